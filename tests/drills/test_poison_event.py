"""Drill: a poison event among good ones; the good ones go on, the poison is dead-lettered.

The poison is a well-formed reminder.due its handler fails on every time with a database
error (PostgreSQL refuses a UTC offset of 16 h), so it is retried, not refused at once: the app
acknowledges the delivery, holds the event and retries it itself (EVENT_RETRY_BASE_SECONDS,
doubling), and after EVENT_MAX_ATTEMPTS attempts keeps it as a dead letter (the admin's Dead
letters, ``manage.py replay_dead_letters``) and publishes it to EVENT_DEAD_LETTER_TOPIC.
"""

from __future__ import annotations

import time

import pytest

from tests.drills.conftest import Stopwatch, World, report
from tests.events.helpers import publish_poison_reminder
from tests.events.test_topology import (
    DEAD_LETTER_TOPIC,
    EVENT_MAX_ATTEMPTS,
    PUBSUB,
    in_seconds,
    iso,
)

pytestmark = [pytest.mark.slow, pytest.mark.drill]

GOOD = 30  # reminders falling due beside the poison, on the same topic


def publish_poison(world: World) -> str:
    """Publish the poison through the sidecar, as any producer could; its event id."""
    poison = publish_poison_reminder(
        world.sidecar.url, world.sidecar.api_token, pubsub=PUBSUB, source="drills"
    )
    return poison["id"]


def test_a_poison_event_among_good_ones_holds_none_of_them_back_and_is_dead_lettered(
    world_ready: World,
) -> None:
    world = world_ready
    remind_at = in_seconds(2)
    started = Stopwatch()
    poison_id = publish_poison(world)
    task_ids = [
        world.create_task(
            f"Drill good reminder {n}", due_date=iso(in_seconds(3600)), remind_at=iso(remind_at)
        )
        for n in range(GOOD)
    ]

    def dead_lettered() -> bool:
        return any(
            p.topic == DEAD_LETTER_TOPIC and p.event.get("id") == poison_id
            for p in list(world.sidecar.published)
        )

    world.wait_until(
        "every good reminder arrives",
        lambda: all(world.emails_for(task_id) for task_id in task_ids),
        30,
    )
    good_done = started()
    assert not dead_lettered()  # the poison was still being retried meanwhile
    world.wait_until("the poison reaches the dead-letter topic", dead_lettered, 30)
    dead_after = started()

    time.sleep(1)
    counts = [len(world.emails_for(task_id)) for task_id in task_ids]
    [(state, attempts, error)] = world.query(
        "SELECT state, attempts, last_error FROM events_consumerfailure WHERE event_id = %s",
        poison_id,
    )
    deliveries = [d for d in list(world.sidecar.deliveries) if d.event_id == poison_id]
    report(
        "poison-event",
        good=GOOD,
        good_emails=sum(counts),
        good_done_seconds=good_done,
        poison_deliveries=len(deliveries),
        poison_attempts=attempts,
        dead_lettered_seconds=dead_after,
    )
    assert counts == [1] * GOOD  # every good one, once
    assert [d.http_status for d in deliveries] == [200]  # acknowledged: the stream went on
    assert (state, attempts) == ("dead", EVENT_MAX_ATTEMPTS)
    assert "DataError" in error or "offset" in error, error
    assert good_done < dead_after
