"""The failure policy: a consumer's failed attempts at an event are counted, then dead-lettered.

Every failed attempt of a consumer (its stable name in ``events.routing.TABLE``) at an event
is counted on one ``ConsumerFailure`` row per (consumer, event id). When ``EVENT_MAX_ATTEMPTS``
attempts have failed, or at once when the event can never be processed (``Unprocessable``),
the row becomes a dead letter and the delivery is answered DROP: daprd sends the event to the
subscription's ``deadLetterTopic``, the embedded relay marks its outbox row done, and the
stream goes on. A later success deletes the row; ``events.dispatch.replay`` replays a dead one.

Counting is race-free: the row is inserted under its unique constraint (a concurrent insert
is ignored), then counted and judged by one conditional UPDATE, which PostgreSQL applies to
each concurrent delivery in turn, so no attempt is lost and the dead-letter transition happens
exactly once (``dead_at`` is set only by the UPDATE that makes it).

Timing: with Dapr the sidecar redelivers on its own schedule (dapr/resiliency.yaml's inbound
policy); on the embedded default the outbox row waits ``retry_after`` before its next attempt
(``exponential_backoff`` with ``EVENT_RETRY_BASE_SECONDS`` / ``EVENT_RETRY_MAX_SECONDS``).
"""

from __future__ import annotations

import datetime as dt
import logging
from enum import StrEnum
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Max, Q, Value, When
from django.utils import timezone

from .backoff import exponential_backoff
from .models import ConsumerFailure, FailureState

if TYPE_CHECKING:
    from .cloudevents import CloudEvent
    from .routing import Consumer

logger = logging.getLogger(__name__)


class FailureKind(StrEnum):
    """How a handler failed (``events.dispatch.classify``), and so what the policy does."""

    TRANSIENT = "transient"  # RetryLater, the database: counted against the budget
    CRASH = "crash"  # any other exception: counted, and logged with its traceback
    PERMANENT = "permanent"  # Unprocessable: dead-lettered at once, no budget spent


def describe(exc: BaseException) -> str:
    """What a failure record keeps of an exception: its class and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:2000]


def record_failure(
    consumer: Consumer, event: CloudEvent, topic: str, exc: BaseException, kind: FailureKind
) -> FailureState:
    """Count one failed attempt of ``consumer`` at ``event``; DEAD once it is dead-lettered.

    A permanent failure dead-letters the event at its first attempt. A dead letter stays
    dead when a redelivery fails again; a replayed one that fails again is judged on its
    attempts so far.
    """
    permanent = kind is FailureKind.PERMANENT
    now = timezone.now()
    error = describe(exc)
    mine = ConsumerFailure.objects.filter(consumer=consumer.name, event_id=event.id)
    # Judged on the row as it was before this attempt: the last attempt of the budget, or
    # an event that can never be processed, dead-letters; a dead letter stays dead.
    is_dead = Q(state=FailureState.DEAD)
    if permanent:
        becomes_dead = Q(pk__isnull=False)  # always
    else:
        becomes_dead = is_dead | Q(attempts__gte=settings.EVENT_MAX_ATTEMPTS - 1)
    with transaction.atomic():
        ConsumerFailure.objects.bulk_create(
            [
                ConsumerFailure(
                    consumer=consumer.name,
                    event_id=event.id,
                    event_type=str(event.event_type),
                    topic=topic,
                    partition_key=str(event.raw.get("subject") or "")[:64],
                    envelope=event.raw,
                    first_failed_at=now,
                    last_failed_at=now,
                )
            ],
            ignore_conflicts=True,  # the unique constraint: a concurrent first failure won
        )
        # One UPDATE counts and judges; PostgreSQL applies concurrent ones in turn, each to
        # the row as the one before left it. Its row lock is held until the read below.
        mine.update(
            attempts=F("attempts") + 1,
            last_error=error,
            last_failed_at=now,
            state=Case(
                When(becomes_dead, then=Value(FailureState.DEAD)),
                default=Value(FailureState.RETRYING),
            ),
            dead_at=Case(When(~is_dead & becomes_dead, then=Value(now)), default=F("dead_at")),
        )
        state, attempts, dead_at = mine.values_list("state", "attempts", "dead_at").get()
    log_args = (event.id, event.event_type, topic, consumer.name, attempts, error)
    if state == FailureState.RETRYING:
        logger.warning(
            "handler failed, retry event_id=%s type=%s topic=%s consumer=%s attempt=%s"
            " of %s error=%s",
            *log_args[:5],
            settings.EVENT_MAX_ATTEMPTS,
            error,
            exc_info=exc if kind is FailureKind.CRASH else None,
        )
    elif dead_at == now:  # this attempt dead-lettered it
        logger.error(
            "event dead-lettered event_id=%s type=%s topic=%s consumer=%s attempts=%s error=%s"
            " (%s)",
            *log_args,
            "it can never be processed" if permanent else "no attempts left",
            exc_info=exc if kind is FailureKind.CRASH else None,
        )
    else:
        logger.warning(
            "dead-lettered event failed again event_id=%s type=%s topic=%s consumer=%s"
            " attempts=%s error=%s",
            *log_args,
        )
    return FailureState(state)


def clear_failures(consumer: Consumer, event: CloudEvent) -> None:
    """``consumer`` has handled ``event``: its failure record, retrying or dead, is done
    with (a replayed one is kept as the operator left it)."""
    ConsumerFailure.objects.filter(
        consumer=consumer.name,
        event_id=event.id,
        state__in=[FailureState.RETRYING, FailureState.DEAD],
    ).delete()


def retry_after(event_id: str) -> tuple[dt.timedelta, str] | None:
    """When an event that a consumer asked to retry is delivered in-process again, and why.

    The wait follows the consumer with the most failed attempts, so no consumer's budget is
    spent faster than the policy's backoff. None when no failure was recorded (the database
    refused even that): the relay's own backoff applies.
    """
    failing = ConsumerFailure.objects.filter(event_id=event_id, state=FailureState.RETRYING)
    attempts = failing.aggregate(most=Max("attempts"))["most"]
    if attempts is None:
        return None
    worst = failing.filter(attempts=attempts).order_by("consumer").first()
    wait = exponential_backoff(
        attempts,
        base_seconds=settings.EVENT_RETRY_BASE_SECONDS,
        max_seconds=settings.EVENT_RETRY_MAX_SECONDS,
    )
    reason = (
        f"{worst.consumer} will retry (attempt {attempts} of {settings.EVENT_MAX_ATTEMPTS}"
        f" failed): {worst.last_error}"
    )
    return wait, reason
