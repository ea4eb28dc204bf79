"""Delivery: an event of a topic fans out to the consumers the routing table gives it.

The sidecar's calls (``/events/<topic>``) and the in-process transport both end in
``deliver``, so the handlers have one code path whichever transport carried the event.
Which consumers a topic has is ``events.routing.TABLE``; which of them this process runs is
``settings.EVENT_CONSUMERS`` (roles). A handler's failure is classified and held by the
failure policy (``events.failures``) and the delivery is acknowledged, so the stream never
waits; ``retry_consumer_failures`` (on the schedule) runs the held events again, and
``replay`` puts a dead letter back in line.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from enum import StrEnum
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from . import failures
from .cloudevents import CloudEvent, MalformedEvent, parse_envelope
from .failures import FailureKind, describe, record_failure
from .models import ConsumerFailure, FailureState, ProcessedEvent
from .runtime import runtime

if TYPE_CHECKING:
    from .routing import Consumer, RoutingTable

logger = logging.getLogger(__name__)


class DeliveryStatus(StrEnum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


class RetryLater(Exception):
    """Raised by a handler for a transient failure: the app holds the event and runs it
    again, until the consumer's attempts (``EVENT_MAX_ATTEMPTS``) are spent."""


class SidecarMisconfigured(RetryLater):
    """Raised by a handler whose call the sidecar refused for its configuration (401 token,
    403 scopes): not the event's fault, so it is retried with backoff and logged as ERROR
    without spending the consumer's attempts."""


class Unprocessable(Exception):
    """Raised by a handler for an event it can never process: dead-lettered at once."""


def classify(exc: BaseException) -> FailureKind:
    """What a handler's exception means for the failure policy."""
    if isinstance(exc, Unprocessable | MalformedEvent):
        return FailureKind.PERMANENT
    if isinstance(exc, SidecarMisconfigured):
        return FailureKind.CONFIGURATION
    if isinstance(exc, RetryLater | DatabaseError):
        return FailureKind.TRANSIENT
    return FailureKind.CRASH


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
    """Validate a CloudEvent and hand it to every local consumer of ``topic``.

    SUCCESS when each consumer handled it, or failed it and the failure policy holds it for
    a retry (the stream goes on); DROP when it is malformed or a consumer can never process
    it (a dead letter: daprd sends it to the dead-letter topic); RETRY only when a failure
    could not even be recorded, so the sidecar delivers it again and nothing is lost. A
    consumer that already holds the event (a duplicate delivery) is skipped.
    """
    try:
        event = parse_envelope(envelope)
    except MalformedEvent as exc:
        logger.warning("event dropped topic=%s reason=%s", topic, exc)
        return DeliveryStatus.DROP
    consumers = _consumers_for(topic, event)
    held = failures.held_by(event.id) if consumers else {}
    status = DeliveryStatus.SUCCESS
    for consumer in consumers:
        if consumer.name in held:
            logger.info(
                "duplicate delivery skipped, the app holds the event event_id=%s type=%s"
                " consumer=%s state=%s",
                event.id,
                event.event_type,
                consumer.name,
                held[consumer.name],
            )
            continue
        try:
            run_handler(consumer, event)
        except Exception as exc:
            try:
                state = record_failure(consumer, event, topic, exc, classify(exc))
            except DatabaseError as record_exc:  # not even recorded: deliver it again
                logger.warning(
                    "handler failed, retry (failure not recorded: %s) event_id=%s type=%s"
                    " topic=%s consumer=%s error=%s",
                    record_exc,
                    event.id,
                    event.event_type,
                    topic,
                    consumer.name,
                    describe(exc),
                )
                status = DeliveryStatus.RETRY
            else:
                if state == FailureState.DEAD and status == DeliveryStatus.SUCCESS:
                    status = DeliveryStatus.DROP
    logger.info(
        "event handled event_id=%s type=%s topic=%s status=%s",
        event.id,
        event.event_type,
        topic,
        status,
    )
    return status


def retry_held(
    failure: ConsumerFailure, consumer: Consumer, *, now: dt.datetime | None = None
) -> FailureState | None:
    """Run a held event's consumer again on its stored CloudEvent (the caller claimed it).

    None when the consumer handled it (the row is finished), else the row's state after the
    failure was counted. The attempt that spends the budget writes the event to the
    dead-letter topic's outbox (with Dapr: daprd answered no DROP, so the app publishes it).
    """
    publish = runtime().dapr  # on the embedded default the row is the dead letter
    try:
        event = parse_envelope(failure.envelope)
    except MalformedEvent as exc:  # stored before a schema change: it can never be run
        event = CloudEvent(
            id=failure.event_id,
            source="",
            type="",
            event_type=failure.event_type,
            data={},
            topic=failure.topic,
            raw=failure.envelope,
        )
        kind = FailureKind.PERMANENT
        return record_failure(
            consumer, event, failure.topic, exc, kind, now=now, publish_dead_letter=publish
        )
    try:
        run_handler(consumer, event)
    except Exception as exc:
        kind = classify(exc)
        return record_failure(
            consumer, event, failure.topic, exc, kind, now=now, publish_dead_letter=publish
        )
    failures.finish(failure)
    logger.info(
        "held event handled event_id=%s type=%s topic=%s consumer=%s",
        event.id,
        event.event_type,
        failure.topic,
        consumer.name,
    )
    return None


def retry_consumer_failures(*, now: dt.datetime | None = None) -> Counter[str]:
    """The retry pass (``events.runtime.SCHEDULE``): run the due held events of the consumers
    this process serves, each claimed first, so several processes of a role run it once.

    Returns how many were handled, held again and dead-lettered.
    """
    served = {consumer.name: consumer for _, consumer in active_consumers()}
    results: Counter[str] = Counter()
    if not served:
        return results
    moment = now or timezone.now()
    for failure in failures.due(served, now=moment, limit=settings.OUTBOX_BATCH_SIZE):
        if not failures.claim(failure, now=moment):
            continue  # another process of the role took it
        state = retry_held(failure, served[failure.consumer], now=now)
        results["handled" if state is None else str(state)] += 1
    return results


class ReplayResult(StrEnum):
    QUEUED = "put back in line"  # the process serving the consumer's role runs it
    REPLAYED = "replayed"  # run here (--now): the consumer handled it
    FAILED = "failed again"  # run here (--now): held for a retry, or dead again
    SKIPPED = "skipped"  # not a dead letter (put back already, or handled)


def consumer_named(name: str) -> Consumer | None:
    """The routing table's consumer of that stable name, whichever role serves it."""
    for consumers in routing_table().consumers.values():
        for consumer in consumers:
            if consumer.name == name:
                return consumer
    return None


def served_consumer(name: str) -> Consumer:
    """The consumer of that name, when this process serves its role; else LookupError
    saying why (a replay run here would run a handler of another deployment)."""
    consumer = consumer_named(name)
    if consumer is None:
        raise LookupError(f"no consumer named {name!r} in events/routing.py")
    if not consumer_enabled(consumer.role):
        raise LookupError(
            f"{name} is served by role {consumer.role!r}, which this process does not serve"
            f" (EVENT_CONSUMERS={','.join(settings.EVENT_CONSUMERS)})"
        )
    return consumer


def replay(failure: ConsumerFailure, *, run_now: bool = False) -> ReplayResult:
    """Put a dead letter back in line with a fresh budget (``failures.put_back_in_line``).

    The process serving its consumer's role runs it on its next retry pass; with
    ``run_now`` this process runs it at once (it must serve that role: ``served_consumer``).
    Idempotent: only a dead letter is put back, so a second replay of it is skipped.
    """
    consumer = served_consumer(failure.consumer) if run_now else None
    now = timezone.now()
    if not failures.put_back_in_line(ConsumerFailure.objects.filter(pk=failure.pk), now=now):
        return ReplayResult.SKIPPED
    logger.info(
        "dead letter put back in line event_id=%s consumer=%s", failure.event_id, failure.consumer
    )
    if consumer is None or not failures.claim(failure, now=now):
        return ReplayResult.QUEUED
    failure.refresh_from_db()
    return ReplayResult.REPLAYED if retry_held(failure, consumer) is None else ReplayResult.FAILED
