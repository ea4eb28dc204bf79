"""The relay: delivers pending outbox rows, outside any transaction, with retries.

Several relays may run at once (threads, Celery workers, ``relay_events`` processes): each
claims rows with a lease through a conditional UPDATE, and only the rows it won are sent.
Only the oldest pending row of each (topic, partition key) is eligible, so a task's events
are published in the order they were written. A row is parked only when daprd refuses the
event itself; every other failure is retried with backoff (``transports.classify``). In
process, a consumer's failure does not hold the row back: the failure policy holds the event
for that consumer (``events.failures``), and the row is done, so the next one of its key is
sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from .backoff import exponential_backoff
from .failures import prune_replayed
from .models import OutboxEvent, OutboxState, ProcessedEvent
from .runtime import runtime
from .transports import Answer, Outcome, get_transport

logger = logging.getLogger(__name__)


@dataclass
class RelayStats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    def add(self, other: RelayStats) -> None:
        self.delivered += other.delivered
        self.retried += other.retried
        self.failed += other.failed

    @property
    def attempted(self) -> int:
        return self.delivered + self.retried + self.failed


def backoff(attempts: int) -> dt.timedelta:
    """When a row that failed ``attempts`` times is tried again (OUTBOX_BACKOFF_*)."""
    return exponential_backoff(
        attempts,
        base_seconds=settings.OUTBOX_BACKOFF_BASE_SECONDS,
        max_seconds=settings.OUTBOX_BACKOFF_MAX_SECONDS,
    )


def _unlocked(now: dt.datetime) -> Q:
    return Q(locked_until__isnull=True) | Q(locked_until__lt=now)


def claim_batch(*, batch_size: int | None = None) -> tuple[str, list[OutboxEvent]]:
    """Lease the due head-of-queue rows; returns the claim token and the rows won."""
    now = timezone.now()
    earlier_pending = OutboxEvent.objects.filter(
        state=OutboxState.PENDING,
        topic=OuterRef("topic"),
        partition_key=OuterRef("partition_key"),
        seq__lt=OuterRef("seq"),
    )
    heads = list(
        OutboxEvent.objects.filter(state=OutboxState.PENDING, next_attempt_at__lte=now)
        .filter(_unlocked(now))
        .filter(~Exists(earlier_pending))
        .order_by("seq")
        .values_list("seq", flat=True)[: batch_size or settings.OUTBOX_BATCH_SIZE]
    )
    token = uuid.uuid4().hex
    if not heads:
        return token, []
    # The conditional UPDATE is the claim: a row already leased by another relay no longer
    # matches, so each row is won by exactly one relay.
    OutboxEvent.objects.filter(seq__in=heads, state=OutboxState.PENDING).filter(
        _unlocked(now)
    ).update(
        locked_by=token,
        locked_until=now + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS),
    )
    return token, list(OutboxEvent.objects.filter(locked_by=token, state=OutboxState.PENDING))


class Lease:
    """The rows a relay claimed, renewed while it works through them.

    A batch can take longer than the lease (slow handlers in-process, a slow sidecar); every
    third of the lease it is extended, and a row whose lease already ran out (so another
    relay may have claimed it) is reported as no longer ours and is not sent.
    """

    def __init__(self, token: str, rows: list[OutboxEvent]) -> None:
        self.token = token
        self.seconds = settings.OUTBOX_LEASE_SECONDS
        self.renewed = time.monotonic()
        self.mine = {row.seq for row in rows}

    def still_mine(self, row: OutboxEvent) -> bool:
        if time.monotonic() - self.renewed > self.seconds / 3:
            now = timezone.now()
            ours = OutboxEvent.objects.filter(locked_by=self.token, locked_until__gt=now)
            ours.update(locked_until=now + dt.timedelta(seconds=self.seconds))
            self.mine = set(
                OutboxEvent.objects.filter(locked_by=self.token, locked_until__gt=now).values_list(
                    "seq", flat=True
                )
            )
            self.renewed = time.monotonic()
        return row.seq in self.mine


def relay_once(*, transport=None, batch_size: int | None = None) -> RelayStats:
    """Claim one batch, publish it and record each row's outcome."""
    stats = RelayStats()
    token, rows = claim_batch(batch_size=batch_size)
    if not rows:
        return stats
    transport = transport or get_transport()
    started = time.monotonic()
    outcomes = transport.publish(rows, still_mine=Lease(token, rows).still_mine)
    duration_ms = int((time.monotonic() - started) * 1000 / len(rows))
    now = timezone.now()
    common = dict(
        attempts=F("attempts") + 1,
        last_attempt_at=now,
        last_attempt_by=relaying_app_id(),
        last_duration_ms=duration_ms,
        locked_by="",
        locked_until=None,
    )
    delivered = [row for row in rows if outcomes[row.seq].delivered]
    if delivered:  # one UPDATE for every delivered row of the batch
        OutboxEvent.objects.filter(seq__in=[r.seq for r in delivered], locked_by=token).update(
            state=OutboxState.DELIVERED, delivered_at=now, last_error="", **common
        )
        stats.delivered = len(delivered)
        for row in delivered:
            logger.info(
                "event published event_id=%s type=%s topic=%s attempt=%s",
                row.id,
                row.event_type,
                row.topic,
                row.attempts + 1,
            )
    configuration_errors: dict[str, list[tuple[OutboxEvent, Outcome]]] = defaultdict(list)
    for row in rows:
        outcome = outcomes[row.seq]
        if outcome.delivered or outcome.answer is Answer.LEASE_LOST:
            continue
        mine = OutboxEvent.objects.filter(seq=row.seq, locked_by=token)
        last_error = _last_error(outcome)[:2000]
        log_args = (row.id, row.event_type, row.topic, row.attempts + 1, last_error)
        if outcome.answer is Answer.REJECTED:
            mine.update(state=OutboxState.FAILED, last_error=last_error, **common)
            stats.failed += 1
            logger.error(
                "event rejected, parked event_id=%s type=%s topic=%s attempt=%s error=%s",
                *log_args,
            )
        elif outcome.answer is Answer.DEAD_LETTERED:
            # Done, so the next event of its (topic, key) goes on; a consumer's dead letter
            # (events.ConsumerFailure) keeps it for a replay.
            mine.update(
                state=OutboxState.DELIVERED, delivered_at=now, last_error=last_error, **common
            )
            stats.delivered += 1
            logger.warning(
                "event dead-lettered in-process, the stream goes on event_id=%s type=%s"
                " topic=%s attempt=%s error=%s",
                *log_args,
            )
        else:  # transient and configuration errors alike: retried with backoff, never parked
            mine.update(
                next_attempt_at=now + backoff(row.attempts + 1),
                last_error=last_error,
                **common,
            )
            stats.retried += 1
            logger.warning(
                "event publish failed, will retry event_id=%s type=%s topic=%s attempt=%s error=%s",
                *log_args,
            )
            if outcome.answer is Answer.CONFIGURATION:
                configuration_errors[outcome.hint].append((row, outcome))
    for hint, failed in configuration_errors.items():  # one line per cause and attempt
        logger.error(
            "sidecar configuration error, publishing is blocked: %s; %s event(s) on %s kept "
            "pending and retried with backoff; the sidecar answered: %s",
            hint,
            len(failed),
            ", ".join(sorted({row.topic for row, _ in failed})),
            failed[0][1].error,
        )
    return stats


def _last_error(outcome: Outcome) -> str:
    """What the row records: the class first (``configuration: ...``), then the answer."""
    hint = f"; {outcome.hint}" if outcome.hint else ""
    return f"{outcome.answer}: {outcome.error}{hint}"


def relaying_app_id() -> str:
    """Whose sidecar this process relays through: its ``DAPR_APP_ID``, "" on the embedded
    default (recorded on each attempt as ``OutboxEvent.last_attempt_by``)."""
    return settings.DAPR_APP_ID if runtime().dapr else ""


def configuration_error() -> str:
    """Why this app's sidecar configuration blocks publishing (401/403), or "" when it does not.

    Read from the outbox rows, so each process of the app (every gunicorn worker,
    ``relay_events``, Celery) answers alike, and from this app id's attempts only: the apps
    of the deployed topology share the outbox, each through its own sidecar, and one app's
    403 says nothing about the others'. It is the newest pending row this app last tried
    and saw fail that way no earlier than this app's last successful publish (a relay pass
    stamps its rows with one time, so a 403 on one topic beside a success on another still
    counts). This app's next successful publish clears it.
    """
    app_id = relaying_app_id()
    last_success = OutboxEvent.objects.filter(
        state=OutboxState.DELIVERED, last_attempt_by=app_id
    ).aggregate(at=Max("delivered_at"))["at"]
    blocked = OutboxEvent.objects.filter(
        state=OutboxState.PENDING,
        last_attempt_by=app_id,
        last_error__startswith=f"{Answer.CONFIGURATION}: ",
    )
    if last_success is not None:
        blocked = blocked.filter(last_attempt_at__gte=last_success)
    return blocked.order_by("-last_attempt_at").values_list("last_error", flat=True).first() or ""


def relay_pending(*, transport=None, max_batches: int = 1000) -> RelayStats:
    """Deliver everything that is due now (until a batch comes back empty)."""
    total = RelayStats()
    for _ in range(max_batches):
        stats = relay_once(transport=transport)
        total.add(stats)
        if stats.attempted == 0 or stats.delivered == 0:
            break
    return total


class Pruned(NamedTuple):
    outbox: int
    processed: int
    replayed: int


def prune(*, now: dt.datetime | None = None) -> Pruned:
    """Delete delivered rows, consumer records and handled replays older than
    OUTBOX_RETENTION_HOURS (dead letters and held events stay)."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.OUTBOX_RETENTION_HOURS)
    outbox, _ = OutboxEvent.objects.filter(
        state=OutboxState.DELIVERED, delivered_at__lt=cutoff
    ).delete()
    processed, _ = ProcessedEvent.objects.filter(processed_at__lt=cutoff).delete()
    return Pruned(outbox, processed, prune_replayed(cutoff))


def retry_now(queryset) -> int:
    """Put failed or waiting rows back in line for immediate delivery (admin action)."""
    return queryset.exclude(state=OutboxState.DELIVERED).update(
        state=OutboxState.PENDING,
        next_attempt_at=timezone.now(),
        locked_by="",
        locked_until=None,
    )


def request_relay() -> None:
    """After commit: ask a worker to deliver now (``Runtime.request_relay``)."""
    runtime().request_relay()
