"""The failure policy: the app holds the events a consumer failed and retries them itself.

A stream never waits for a failing consumer. When a handler fails an event, the failure is
recorded on one ``ConsumerFailure`` row per (consumer, event id), RETRYING with the stored
CloudEvent and the time of its next attempt, and the delivery is acknowledged: the Kafka
partition (or, on the embedded default, the task's outbox queue) goes on at once. The retry
pass (``events.dispatch.retry_consumer_failures``, on the schedule) runs the due rows of the
consumers a process serves. After ``EVENT_MAX_ATTEMPTS`` failed attempts in all (the first
delivery's included), or at once when the event can never be processed (``Unprocessable``),
the row is a dead letter. A success deletes the row (a replayed one is marked REPLAYED).

Counting is race-free: the row is inserted under its unique constraint (a concurrent insert
is ignored), counted by one UPDATE (on PostgreSQL its row lock makes concurrent ones wait
their turn), and made dead by a conditional UPDATE that only one attempt can win. A retry
claims its row with a conditional UPDATE and a lease (``locked_until``), so several
processes serving one role run each due row once.

Who publishes a dead letter to ``EVENT_DEAD_LETTER_TOPIC``: at a delivery the answer DROP
makes daprd do it; when the retry pass spends the budget, the app writes the stored
CloudEvent (its id kept) to the outbox in the same transaction (with Dapr only: on the
embedded default there is no broker to carry it, and the row itself is the dead letter).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from .backoff import exponential_backoff
from .models import ConsumerFailure, FailureState
from .outbox import emit_dead_letter

if TYPE_CHECKING:
    from .cloudevents import CloudEvent
    from .routing import Consumer

logger = logging.getLogger(__name__)


class FailureKind(StrEnum):
    """How a handler failed (``events.dispatch.classify``), and so what the policy does."""

    TRANSIENT = "transient"  # RetryLater, the database: counted against the budget
    CRASH = "crash"  # any other exception: counted, and logged with its traceback
    PERMANENT = "permanent"  # Unprocessable: dead-lettered at once, no budget spent
    CONFIGURATION = "configuration"  # SidecarMisconfigured: retried, logged as ERROR, not counted


def describe(exc: BaseException) -> str:
    """What a failure record keeps of an exception: its class and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:2000]


def retry_wait(tries: int) -> dt.timedelta:
    """The wait after a consumer's ``tries``-th failed attempt at an event (EVENT_RETRY_*)."""
    return exponential_backoff(
        tries,
        base_seconds=settings.EVENT_RETRY_BASE_SECONDS,
        max_seconds=settings.EVENT_RETRY_MAX_SECONDS,
    )


def record_failure(
    consumer: Consumer,
    event: CloudEvent,
    topic: str,
    exc: BaseException,
    kind: FailureKind,
    *,
    now: dt.datetime | None = None,
    publish_dead_letter: bool = False,
) -> FailureState | None:
    """Hold ``event`` for ``consumer`` after a failed attempt; returns the row's state.

    RETRYING with its next attempt after the backoff, or DEAD when this attempt spent the
    budget or the event can never be processed (a dead letter stays dead). A configuration
    error spends no attempt. With ``publish_dead_letter`` the attempt that makes the row dead
    also writes the event to the dead-letter topic's outbox. None when the row was finished
    meanwhile (a concurrent success): nothing is left to hold.
    """
    now = now or timezone.now()
    error = describe(exc)
    key = str(event.raw.get("subject") or "")[:64]  # the task: its partition key
    mine = ConsumerFailure.objects.filter(consumer=consumer.name, event_id=event.id)
    counted = kind is not FailureKind.CONFIGURATION
    count = (
        {"attempts": F("attempts") + 1}
        if counted
        else {"configuration_failures": F("configuration_failures") + 1}
    )
    with transaction.atomic():
        ConsumerFailure.objects.bulk_create(
            [
                ConsumerFailure(
                    consumer=consumer.name,
                    event_id=event.id,
                    event_type=str(event.event_type),
                    topic=topic,
                    partition_key=key,
                    envelope=event.raw,
                    first_failed_at=now,
                    last_failed_at=now,
                    next_attempt_at=now,
                )
            ],
            ignore_conflicts=True,  # the unique constraint: a concurrent first failure won
        )
        # Counted first: on PostgreSQL this UPDATE's row lock makes a concurrent failure of
        # the same (consumer, event) wait until this transaction ends.
        if not mine.update(last_error=error, last_failed_at=now, locked_until=None, **count):
            return None
        # Only the attempt that finds the row still retrying and out of attempts makes it dead.
        spent = Q(attempts__gte=settings.EVENT_MAX_ATTEMPTS)
        dies = Q() if kind is FailureKind.PERMANENT else spent
        died = counted and bool(
            mine.filter(dies, state=FailureState.RETRYING).update(
                state=FailureState.DEAD, dead_at=now
            )
        )
        state, attempts, misconfigured = mine.values_list(
            "state", "attempts", "configuration_failures"
        ).get()
        next_attempt_at = None
        if state == FailureState.RETRYING:
            next_attempt_at = now + retry_wait(attempts + misconfigured)
            mine.update(next_attempt_at=next_attempt_at)
        elif died and publish_dead_letter:
            emit_dead_letter(event.raw, event_type=str(event.event_type), partition_key=key)
    _log_failure(consumer, event, topic, exc, kind, state, attempts, died, next_attempt_at)
    return FailureState(state)


def _log_failure(consumer, event, topic, exc, kind, state, attempts, died, next_attempt_at):
    fields = (
        f"event_id={event.id} type={event.event_type} topic={topic} consumer={consumer.name}"
        f" attempts={attempts}/{settings.EVENT_MAX_ATTEMPTS}"
    )
    error = describe(exc)
    traceback = exc if kind is FailureKind.CRASH else None
    if kind is FailureKind.CONFIGURATION:
        logger.error(
            "the sidecar refused the handler for its configuration, event held (no attempt"
            " spent) %s next_attempt_at=%s error=%s",
            fields,
            next_attempt_at and next_attempt_at.isoformat(),
            error,
        )
    elif state == FailureState.RETRYING:
        logger.warning(
            "handler failed, event held for a retry %s next_attempt_at=%s error=%s",
            fields,
            next_attempt_at.isoformat(),
            error,
            exc_info=traceback,
        )
    elif died:
        why = "it can never be processed" if kind is FailureKind.PERMANENT else "no attempts left"
        logger.error("event dead-lettered (%s) %s error=%s", why, fields, error, exc_info=traceback)
    else:
        logger.warning("held event failed again %s state=%s error=%s", fields, state, error)


def held_by(event_id: str) -> dict[str, str]:
    """consumer name -> state of each consumer that holds the event (retrying, dead, replayed):
    a delivery of it skips them."""
    return dict(ConsumerFailure.objects.filter(event_id=event_id).values_list("consumer", "state"))


def _unlocked(now: dt.datetime) -> Q:
    return Q(locked_until__isnull=True) | Q(locked_until__lt=now)


def due(consumers: Iterable[str], *, now: dt.datetime, limit: int) -> list[ConsumerFailure]:
    """The held events of these consumers whose next attempt is due, the oldest first."""
    return list(
        ConsumerFailure.objects.filter(
            state=FailureState.RETRYING, consumer__in=list(consumers), next_attempt_at__lte=now
        )
        .filter(_unlocked(now))
        .order_by("next_attempt_at", "pk")[:limit]
    )


def claim(failure: ConsumerFailure, *, now: dt.datetime) -> bool:
    """Lease one due row for a retry: True for exactly one of the processes asking at once.

    The lease (``OUTBOX_LEASE_SECONDS``) outlasts a handler's run; recording the outcome ends
    it, and a process that died mid-retry leaves a row that comes due again when it expires.
    """
    lease = dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    return bool(
        ConsumerFailure.objects.filter(
            pk=failure.pk, state=FailureState.RETRYING, next_attempt_at__lte=now
        )
        .filter(_unlocked(now))
        .update(locked_until=now + lease)
    )


def finish(failure: ConsumerFailure) -> None:
    """The consumer handled its held event: the row is done with (a replayed one is kept as
    REPLAYED, for the admin's history, until ``prune_replayed``)."""
    mine = ConsumerFailure.objects.filter(pk=failure.pk, state=FailureState.RETRYING)
    mine.filter(replayed_at__isnull=True).delete()
    mine.update(state=FailureState.REPLAYED, locked_until=None)


def put_back_in_line(dead: QuerySet[ConsumerFailure], *, now: dt.datetime | None = None) -> int:
    """Replay: the chosen dead letters are held again with a fresh budget, due now, for the
    process serving each consumer's role to run. Returns how many were dead (the others are
    left as they are)."""
    now = now or timezone.now()
    return dead.filter(state=FailureState.DEAD).update(
        state=FailureState.RETRYING,
        attempts=0,
        configuration_failures=0,
        next_attempt_at=now,
        locked_until=None,
        replayed_at=now,
    )


def prune_replayed(cutoff: dt.datetime) -> int:
    """Delete the replayed dead letters that were handled and put back before ``cutoff``."""
    deleted, _ = ConsumerFailure.objects.filter(
        state=FailureState.REPLAYED, replayed_at__lt=cutoff
    ).delete()
    return deleted
