"""Delivery: an event of a topic fans out to the consumers the routing table gives it.

The sidecar's calls (``/events/<topic>``) and the in-process transport both end in
``deliver``, so the handlers have one code path whichever transport carried the event.
Which consumers a topic has is ``events.routing.TABLE``; which of them this process runs is
``settings.EVENT_CONSUMERS`` (roles). A handler's failure is classified and counted by the
failure policy (``events.failures``): RETRY until the consumer's budget is spent, then DROP
(a dead letter); ``replay`` runs a dead letter's consumer again.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .cloudevents import CloudEvent, MalformedEvent, parse_envelope
from .failures import FailureKind, clear_failures, describe, record_failure
from .models import ConsumerFailure, FailureState, ProcessedEvent

if TYPE_CHECKING:
    from .routing import Consumer, RoutingTable

logger = logging.getLogger(__name__)


class DeliveryStatus(StrEnum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


class RetryLater(Exception):
    """Raised by a handler for a transient failure: the event will be delivered again, until
    the consumer's attempts (``EVENT_MAX_ATTEMPTS``) are spent."""


class Unprocessable(Exception):
    """Raised by a handler for an event it can never process: dead-lettered at once."""


def classify(exc: BaseException) -> FailureKind:
    """What a handler's exception means for the failure policy."""
    if isinstance(exc, Unprocessable | MalformedEvent):
        return FailureKind.PERMANENT
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

    SUCCESS when each consumer handled it; RETRY while a consumer failed with attempts left;
    DROP when it is malformed, or a consumer dead-lettered it and none is left to retry.
    """
    try:
        event = parse_envelope(envelope)
    except MalformedEvent as exc:
        logger.warning("event dropped topic=%s reason=%s", topic, exc)
        return DeliveryStatus.DROP
    outcomes: set[FailureState] = set()
    for consumer in _consumers_for(topic, event):
        try:
            run_handler(consumer, event)
        except Exception as exc:
            try:
                outcomes.add(record_failure(consumer, event, topic, exc, classify(exc)))
            except DatabaseError as record_exc:  # not even counted: try again later
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
                outcomes.add(FailureState.RETRYING)
        else:
            try:
                clear_failures(consumer, event)
            except DatabaseError as exc:  # handled, but its failure record is left: redeliver
                logger.warning(
                    "failure record not cleared, retry event_id=%s consumer=%s error=%s",
                    event.id,
                    consumer.name,
                    exc,
                )
                outcomes.add(FailureState.RETRYING)
    if FailureState.RETRYING in outcomes:
        status = DeliveryStatus.RETRY
    elif FailureState.DEAD in outcomes:
        status = DeliveryStatus.DROP
    else:
        status = DeliveryStatus.SUCCESS
    logger.info(
        "event handled event_id=%s type=%s topic=%s status=%s",
        event.id,
        event.event_type,
        topic,
        status,
    )
    return status


class ReplayResult(StrEnum):
    REPLAYED = "replayed"  # the consumer handled it (or had already): marked replayed
    FAILED = "failed"  # it failed again: still dead, with the new error
    SKIPPED = "skipped"  # not a dead letter (replayed already, or still retrying)


def consumer_named(name: str) -> Consumer | None:
    """The routing table's consumer of that stable name, whichever role serves it."""
    for consumers in routing_table().consumers.values():
        for consumer in consumers:
            if consumer.name == name:
                return consumer
    return None


def replay(failure: ConsumerFailure) -> ReplayResult:
    """Run a dead letter's consumer again on its stored CloudEvent, through ``run_handler``.

    Idempotent: a transactional consumer that already handled the event does nothing (its
    ``ProcessedEvent`` record), the others are idempotent by their own claims, and only a
    dead letter is replayed, so a second replay of the same record is skipped.
    """
    if failure.state != FailureState.DEAD:
        return ReplayResult.SKIPPED
    dead = ConsumerFailure.objects.filter(pk=failure.pk, state=FailureState.DEAD)
    try:
        consumer = consumer_named(failure.consumer)
        if consumer is None:
            raise LookupError(f"no consumer named {failure.consumer!r} in events/routing.py")
        run_handler(consumer, parse_envelope(failure.envelope))
    except Exception as exc:
        error = describe(exc)
        dead.update(attempts=F("attempts") + 1, last_error=error, last_failed_at=timezone.now())
        logger.warning(
            "replay failed, still dead event_id=%s consumer=%s error=%s",
            failure.event_id,
            failure.consumer,
            error,
            exc_info=classify(exc) is FailureKind.CRASH,
        )
        return ReplayResult.FAILED
    replayed = dead.update(state=FailureState.REPLAYED, replayed_at=timezone.now())
    logger.info("dead letter replayed event_id=%s consumer=%s", failure.event_id, failure.consumer)
    return ReplayResult.REPLAYED if replayed else ReplayResult.SKIPPED
