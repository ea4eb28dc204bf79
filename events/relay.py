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
from django.db.models import Case, DateTimeField, Exists, F, Max, Min, OuterRef, Q, Value, When
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


def _eligible(now: dt.datetime) -> Q:
    """Pending, due, not leased, and the oldest pending row of its (topic, partition key)."""
    earlier_pending = OutboxEvent.objects.filter(
        state=OutboxState.PENDING,
        topic=OuterRef("topic"),
        partition_key=OuterRef("partition_key"),
        seq__lt=OuterRef("seq"),
    )
    return (
        Q(state=OutboxState.PENDING, next_attempt_at__lte=now)
        & _unlocked(now)
        & ~Exists(earlier_pending)
    )


def claim_batch(*, batch_size: int | None = None) -> tuple[str, list[OutboxEvent]]:
    """Lease the due head-of-queue rows; returns the claim token and the rows won.

    Two statements when no other relay competes: the SELECT of the heads, then the
    conditional UPDATE that claims them (a third reads which rows were won when some were
    taken in between).
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    # The oldest pending row of each key, found in one pass over the pending rows' index
    # (the same rows as _eligible()'s NOT EXISTS, which costs an index probe per pending row
    # scanned: 160 ms on a 10,000-row backlog of 20 keys instead of 3 ms).
    first_of_each_key = (
        OutboxEvent.objects.filter(state=OutboxState.PENDING)
        .order_by()
        .values("topic", "partition_key")
        .annotate(first=Min("seq"))
        .values("first")
    )
    heads = list(
        OutboxEvent.objects.filter(seq__in=first_of_each_key, next_attempt_at__lte=now)
        .filter(_unlocked(now))
        .order_by("seq")[: batch_size or settings.OUTBOX_BATCH_SIZE]
    )
    if not heads:
        return token, []
    # The conditional UPDATE is the claim: it checks eligibility again, so a row another
    # relay leased (or one that stopped being the head of its key) meanwhile no longer
    # matches, and each row is won by exactly one relay.
    seqs = [row.seq for row in heads]
    lease = {
        "locked_by": token,
        "locked_until": now + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS),
    }
    won = OutboxEvent.objects.filter(_eligible(now), seq__in=seqs).order_by().update(**lease)
    if won < len(heads):
        mine = set(
            OutboxEvent.objects.filter(seq__in=seqs, locked_by=token).values_list("seq", flat=True)
        )
        heads = [row for row in heads if row.seq in mine]
    for row in heads:
        row.locked_by, row.locked_until = lease["locked_by"], lease["locked_until"]
    return token, heads


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
    """Claim one batch, publish it and record the outcomes: one UPDATE for the delivered
    rows, one per kind of failure (same outcome and error)."""
    token, rows = claim_batch(batch_size=batch_size)
    if not rows:
        return RelayStats()
    transport = transport or get_transport()
    started = time.monotonic()
    outcomes = transport.publish(rows, still_mine=Lease(token, rows).still_mine)
    duration_ms = int((time.monotonic() - started) * 1000 / len(rows))
    return _record(token, rows, outcomes, duration_ms)


def _record(
    token: str, rows: list[OutboxEvent], outcomes: dict[int, Outcome], duration_ms: int
) -> RelayStats:
    """Write each row's outcome, only on rows this relay still holds (``locked_by``)."""
    stats = RelayStats()
    now = timezone.now()
    common = dict(
        attempts=F("attempts") + 1,
        last_attempt_at=now,
        last_attempt_by=relaying_app_id(),
        last_duration_ms=duration_ms,
        locked_by="",
        locked_until=None,
    )
    # (the change, its stats field) -> the rows it applies to
    groups: dict[tuple[tuple, str], list[OutboxEvent]] = defaultdict(list)
    retry_at: dict[int, dt.datetime] = {}
    configuration_errors: dict[str, list[tuple[OutboxEvent, Outcome]]] = defaultdict(list)
    for row in rows:
        outcome = outcomes[row.seq]
        if outcome.answer is Answer.LEASE_LOST:
            continue
        if outcome.delivered:
            groups[((("state", OutboxState.DELIVERED), ("last_error", "")), "delivered")].append(
                row
            )
            logger.info(
                "event published event_id=%s type=%s topic=%s attempt=%s",
                row.id,
                row.event_type,
                row.topic,
                row.attempts + 1,
            )
            continue
        last_error = _last_error(outcome)[:2000]
        log_args = (row.id, row.event_type, row.topic, row.attempts + 1, last_error)
        if outcome.answer is Answer.REJECTED:
            change = (("state", OutboxState.FAILED), ("last_error", last_error))
            groups[(change, "failed")].append(row)
            logger.error(
                "event rejected, parked event_id=%s type=%s topic=%s attempt=%s error=%s",
                *log_args,
            )
        elif outcome.answer is Answer.DEAD_LETTERED:
            # Done, so the next event of its (topic, key) goes on; a consumer's dead letter
            # (events.ConsumerFailure) keeps it for a replay.
            change = (("state", OutboxState.DELIVERED), ("last_error", last_error))
            groups[(change, "delivered")].append(row)
            logger.warning(
                "event dead-lettered in-process, the stream goes on event_id=%s type=%s"
                " topic=%s attempt=%s error=%s",
                *log_args,
            )
        else:  # transient and configuration errors alike: retried with backoff, never parked
            groups[((("last_error", last_error),), "retried")].append(row)
            retry_at[row.seq] = now + backoff(row.attempts + 1)  # jittered: spread out
            logger.warning(
                "event publish failed, will retry event_id=%s type=%s topic=%s attempt=%s error=%s",
                *log_args,
            )
            if outcome.answer is Answer.CONFIGURATION:
                configuration_errors[outcome.hint].append((row, outcome))
    for (change, counter), group in groups.items():
        fields = dict(change)
        if fields.get("state") == OutboxState.DELIVERED:
            fields["delivered_at"] = now
        if counter == "retried":
            fields["next_attempt_at"] = Case(
                *(When(seq=row.seq, then=Value(retry_at[row.seq])) for row in group),
                output_field=DateTimeField(),
            )
        OutboxEvent.objects.filter(seq__in=[row.seq for row in group], locked_by=token).update(
            **fields, **common
        )
        setattr(stats, counter, getattr(stats, counter) + len(group))
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
