"""Delivery: an event of a topic fans out to the consumers the routing table gives it.

The sidecar's calls (``/events/<topic>``) and the in-process transport both end in
``deliver``, so the handlers have one code path whichever transport carried the event.
Which consumers a topic has is ``events.routing.TABLE``; which of them this process runs is
``settings.EVENT_CONSUMERS`` (roles).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from .cloudevents import CloudEvent, MalformedEvent, parse_envelope
from .models import ProcessedEvent

if TYPE_CHECKING:
    from .routing import Consumer, RoutingTable

logger = logging.getLogger(__name__)


class DeliveryStatus(StrEnum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


class RetryLater(Exception):
    """Raised by a handler for a transient failure: the event will be delivered again."""


def routing_table() -> RoutingTable:
    """``events.routing.TABLE``, imported when first needed: it imports the handlers, and
    they import this module."""
    from .routing import TABLE

    return TABLE


def consumer_enabled(role: str) -> bool:
    """Whether this process serves ``role``: ``EVENT_CONSUMERS`` names it, or is "all"."""
    wanted = {name.strip() for name in settings.EVENT_CONSUMERS}
    return "all" in wanted or role in wanted


def active_consumers() -> list[tuple[str, Consumer]]:
    """(configured topic name, consumer) for each consumer this process serves.

    A logical topic missing from ``EVENT_TOPICS`` has no configured name and is skipped here;
    ``manage.py check`` reports it (tideline.E001).
    """
    return [
        (settings.EVENT_TOPICS[logical], consumer)
        for logical, consumers in routing_table().consumers.items()
        if logical in settings.EVENT_TOPICS
        for consumer in consumers
        if consumer_enabled(consumer.role)
    ]


def subscribed_topics() -> list[str]:
    return sorted({topic for topic, _ in active_consumers()})


def _consumers_for(topic: str, event: CloudEvent) -> list[Consumer]:
    return [
        consumer
        for consumer_topic, consumer in active_consumers()
        if consumer_topic == topic and event.event_type in consumer.event_types
    ]


def run_handler(consumer: Consumer, event: CloudEvent) -> bool:
    """Run one consumer at most once per event; False when it had already run.

    The idempotency key is the consumer's stable name from the routing table, so renaming
    or moving its handler function does not make redelivered events run again.
    """
    if not consumer.transactional:
        consumer.handler(event)
        return True
    with transaction.atomic():
        try:
            with transaction.atomic():
                ProcessedEvent.objects.create(consumer=consumer.name, event_id=event.id)
        except IntegrityError:
            logger.info(
                "duplicate delivery ignored event_id=%s type=%s consumer=%s",
                event.id,
                event.event_type,
                consumer.name,
            )
            return False
        consumer.handler(event)
    return True


def deliver(topic: str, envelope: bytes | str | dict) -> DeliveryStatus:
    """Validate a CloudEvent and hand it to every local handler of ``topic``."""
    try:
        event = parse_envelope(envelope)
    except MalformedEvent as exc:
        logger.warning("event dropped topic=%s reason=%s", topic, exc)
        return DeliveryStatus.DROP
    status = DeliveryStatus.SUCCESS
    for consumer in _consumers_for(topic, event):
        try:
            run_handler(consumer, event)
        except (RetryLater, DatabaseError) as exc:
            logger.warning(
                "handler failed, retry event_id=%s type=%s topic=%s consumer=%s error=%s",
                event.id,
                event.event_type,
                topic,
                consumer.name,
                exc,
            )
            status = DeliveryStatus.RETRY
        except Exception:
            logger.exception(
                "handler crashed, retry event_id=%s type=%s topic=%s consumer=%s",
                event.id,
                event.event_type,
                topic,
                consumer.name,
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
