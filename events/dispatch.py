"""Subscriptions: consumers register handlers per topic; deliveries fan out to them.

The sidecar's calls (``/events/<topic>``) and the in-process transport both end in
``deliver``, so the handlers have one code path whichever transport carried the event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from .cloudevents import CloudEvent, MalformedEvent, parse_envelope
from .models import ProcessedEvent
from .registry import EventType
from .registry import topic as topic_name

logger = logging.getLogger(__name__)


class DeliveryStatus(StrEnum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


class RetryLater(Exception):
    """Raised by a handler for a transient failure: the event will be delivered again."""


Handler = Callable[[CloudEvent], None]


@dataclass(frozen=True)
class Subscription:
    consumer: str
    topic: str  # logical name, e.g. "task_events"
    handler: Handler
    event_types: frozenset[EventType] | None
    transactional: bool

    @property
    def key(self) -> str:
        """The idempotency key of this handler: a consumer may have several handlers."""
        return f"{self.consumer}.{self.handler.__name__}"


_subscriptions: list[Subscription] = []


def subscribe(
    *,
    consumer: str,
    topic: str,
    event_types: Iterable[EventType] | None = None,
    transactional: bool = True,
) -> Callable[[Handler], Handler]:
    """Register a handler for a logical topic.

    A transactional handler runs in one transaction with the (consumer, event id) record,
    so a duplicate delivery has no second effect. A non-transactional handler must be
    idempotent by itself (e.g. it does network I/O guarded by its own atomic claim).
    """

    def register(handler: Handler) -> Handler:
        subscription = Subscription(
            consumer=consumer,
            topic=topic,
            handler=handler,
            event_types=frozenset(event_types) if event_types else None,
            transactional=transactional,
        )
        if subscription not in _subscriptions:
            _subscriptions.append(subscription)
        return handler

    return register


def consumer_enabled(consumer: str) -> bool:
    wanted = {name.strip() for name in settings.EVENT_CONSUMERS}
    return "all" in wanted or consumer in wanted


def active_subscriptions() -> list[Subscription]:
    return [s for s in _subscriptions if consumer_enabled(s.consumer)]


def subscribed_topics() -> list[str]:
    return sorted({topic_name(s.topic) for s in active_subscriptions()})


def _handlers_for(topic: str, event: CloudEvent) -> list[Subscription]:
    return [
        s
        for s in active_subscriptions()
        if topic_name(s.topic) == topic
        and (s.event_types is None or event.event_type in s.event_types)
    ]


def run_handler(subscription: Subscription, event: CloudEvent) -> bool:
    """Run one handler at most once per event; False when it had already run."""
    if not subscription.transactional:
        subscription.handler(event)
        return True
    with transaction.atomic():
        try:
            with transaction.atomic():
                ProcessedEvent.objects.create(consumer=subscription.key, event_id=event.id)
        except IntegrityError:
            logger.info(
                "duplicate delivery ignored event_id=%s type=%s consumer=%s",
                event.id,
                event.event_type,
                subscription.key,
            )
            return False
        subscription.handler(event)
    return True


def deliver(topic: str, envelope: bytes | str | dict) -> DeliveryStatus:
    """Validate a CloudEvent and hand it to every local handler of ``topic``."""
    try:
        event = parse_envelope(envelope)
    except MalformedEvent as exc:
        logger.warning("event dropped topic=%s reason=%s", topic, exc)
        return DeliveryStatus.DROP
    status = DeliveryStatus.SUCCESS
    for subscription in _handlers_for(topic, event):
        try:
            run_handler(subscription, event)
        except (RetryLater, DatabaseError) as exc:
            logger.warning(
                "handler failed, retry event_id=%s type=%s topic=%s consumer=%s error=%s",
                event.id,
                event.event_type,
                topic,
                subscription.key,
                exc,
            )
            status = DeliveryStatus.RETRY
        except Exception:
            logger.exception(
                "handler crashed, retry event_id=%s type=%s topic=%s consumer=%s",
                event.id,
                event.event_type,
                topic,
                subscription.key,
            )
            status = DeliveryStatus.RETRY
    logger.info(
        "event handled event_id=%s type=%s topic=%s status=%s",
        event.id,
        event.event_type,
        topic,
        status,
    )
    return status
