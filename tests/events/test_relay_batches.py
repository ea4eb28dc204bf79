"""The relay works in batches: claim, publish and mark a batch in a fixed number of SQL
statements, whatever its size, with the per-key order and the retries of the row-by-row
relay."""

from __future__ import annotations

from collections import defaultdict

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import OutboxEvent, OutboxState
from events.relay import relay_once, relay_pending
from tests.events.helpers import rows

TOPICS = ("task-events", "task-updates")


def backlog(*, keys: int, per_key: int) -> list[OutboxEvent]:
    """``per_key`` events for each of ``keys`` tasks on both topics, written round by round
    (the keys' events interleave in ``seq`` order, as many users' writes do)."""
    return OutboxEvent.objects.bulk_create(
        OutboxEvent(
            event_type="task.updated",
            topic=topic,
            partition_key=str(key),
            data={"task_id": key, "user_id": 1, "changes": {"title": {"new": f"v{n}"}}},
        )
        for n in range(per_key)
        for key in range(1, keys + 1)
        for topic in TOPICS
    )


def published_in_order_by_key(sidecar) -> dict[tuple[str, str], list[str]]:
    by_key = defaultdict(list)
    for item in sidecar.published:
        by_key[(item.topic, item.query["metadata.partitionKey"])].append(item.event["id"])
    return by_key


def bulk_calls(sidecar) -> int:
    """How many publish calls carried the events (a bulk call publishes several)."""
    return len({id(item.headers) for item in sidecar.published})


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "one-by-one"])
def test_a_backlog_drains_exactly_once_in_key_order_in_three_statements_a_batch(
    alice, fake_dapr, settings, bulk
):
    settings.DAPR_BULK_PUBLISH = bulk
    backlog(keys=12, per_key=5)  # 24 (topic, key) streams of 5 events: 120 rows
    written = {(r.topic, r.partition_key): [] for r in rows()}
    for row in rows():
        written[(row.topic, row.partition_key)].append(str(row.id))

    with CaptureQueriesContext(connection) as queries:
        stats = relay_pending()

    # Only the oldest pending event of each stream is eligible: 5 batches of the 24 heads.
    assert stats.delivered == 120 and stats.retried == stats.failed == 0
    ids = [event["id"] for event in fake_dapr.events()]
    assert len(ids) == len(set(ids)) == 120, "every event arrives exactly once"
    assert published_in_order_by_key(fake_dapr) == written
    assert all(r.state == OutboxState.DELIVERED and r.attempts == 1 for r in rows())
    # Per batch: the SELECT of the heads, the UPDATE that claims them, one UPDATE marking
    # them delivered; then the SELECT that finds nothing left.
    assert len(queries) == 5 * 3 + 1, "\n".join(q["sql"][:120] for q in queries)
    assert bulk_calls(fake_dapr) == (5 * len(TOPICS) if bulk else 120)


def test_a_bulk_partial_failure_retries_only_the_failed_entries(alice, fake_dapr, caplog):
    backlog(keys=3, per_key=2)
    first_round = rows()[:6]
    failing = [first_round[1], first_round[4]]  # one on each topic
    fake_dapr.fail_events(*(str(row.id) for row in failing))

    with CaptureQueriesContext(connection) as queries:
        stats = relay_once()

    assert (stats.delivered, stats.retried) == (4, 2)
    # The two failed entries share their outcome: one UPDATE for them, one for the rest.
    assert len(queries) == 4
    assert {e["id"] for e in fake_dapr.events()} == {
        str(r.id) for r in first_round if r not in failing
    }
    for row in failing:
        row.refresh_from_db()
        assert row.state == OutboxState.PENDING and row.attempts == 1
        assert row.last_error.startswith("transient: bulk entry failed (500)")
        assert row.next_attempt_at > timezone.now()
        assert row.locked_by == ""
    assert failing[0].next_attempt_at != failing[1].next_attempt_at, "jitter spreads retries"

    # Once due, the failed entries go again, alone of their stream's events at first ...
    OutboxEvent.objects.filter(state=OutboxState.PENDING).update(next_attempt_at=timezone.now())
    fake_dapr.published.clear()
    relay_once(batch_size=100)
    sent = [e["id"] for e in fake_dapr.events()]
    assert {str(row.id) for row in failing} <= set(sent)
    later_of_failed = {
        str(r.id)
        for r in rows()[6:]
        if (r.topic, r.partition_key) in {(f.topic, f.partition_key) for f in failing}
    }
    assert not later_of_failed & set(sent), "a later event overtook a failed one of its key"

    # ... and in the end every event arrived exactly once, in order per stream.
    relay_pending()
    assert not OutboxEvent.objects.exclude(state=OutboxState.DELIVERED).exists()
    assert sorted(r.attempts for r in rows()) == [1] * 10 + [2, 2]
