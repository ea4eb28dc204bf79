"""What a spawned instance carries over, and what the completed one records."""

from __future__ import annotations

import datetime as dt

import pytest

from tasks.models import Task
from tests.recurrence.helpers import NEW_YORK, at, complete_and_relay, local_due
from tests.support.events import capture_events


@pytest.fixture
def first(alice, make_task, make_category):
    return make_task(
        alice,
        title="Pay rent",
        description="Transfer to the landlord",
        priority="high",
        category=make_category(alice, "Home"),
        tags=["bills", "Monthly"],
        due_date=at("2025-01-06 09:00").replace(tzinfo=None),
        timezone=NEW_YORK,
        recurrence_rule="FREQ=WEEKLY;BYDAY=MO",
        recurrence_mode="schedule",
        remind_before=dt.timedelta(hours=2),
    )


COPIED = (
    "user_id",
    "title",
    "description",
    "priority",
    "category_id",
    "timezone",
    "recurrence_rule",
    "recurrence_type",
    "recurrence_interval",
    "recurrence_mode",
    "remind_before",
    "series_id",
)


def test_the_spawned_instance_copies_the_completed_one(first):
    spawned = complete_and_relay(first)

    assert {name: getattr(spawned, name) for name in COPIED} == {
        name: getattr(first, name) for name in COPIED
    }
    assert sorted(tag.name for tag in spawned.tags.all()) == sorted(["bills", "Monthly"])
    assert local_due(spawned) == at("2025-01-13 09:00")


def test_the_spawned_instance_is_pending_and_points_at_its_parent(first):
    spawned = complete_and_relay(first)

    assert spawned.parent_id == first.pk
    assert not spawned.completed
    assert spawned.completed_at is None
    assert spawned.occurrence == spawned.due_date
    assert spawned.next_occurrence_at is None


def test_the_completed_instance_records_the_next_occurrence_and_the_trigger(first):
    spawned = complete_and_relay(first)

    first.refresh_from_db()
    assert first.next_occurrence_at == spawned.due_date
    assert first.last_triggered_at is not None
    assert first.last_triggered_at >= first.completed_at


def test_the_spawned_instance_keeps_the_reminder_offset(first):
    spawned = complete_and_relay(first)

    assert spawned.remind_before == dt.timedelta(hours=2)
    assert spawned.remind_at == at("2025-01-13 07:00")
    assert not spawned.reminder_sent


def test_an_absolute_reminder_moves_with_the_due_date(alice, make_task):
    first = make_task(
        alice,
        due_date=at("2025-01-06 09:00").replace(tzinfo=None),
        remind_at=at("2025-01-05 18:30").replace(tzinfo=None),
        timezone=NEW_YORK,
        recurrence_rule="FREQ=WEEKLY",
    )

    spawned = complete_and_relay(first)

    assert spawned.remind_at == at("2025-01-12 18:30")
    assert spawned.remind_before == dt.timedelta(hours=14, minutes=30)


def test_a_reminder_days_before_keeps_its_wall_clock_time_across_dst(alice, make_task):
    first = make_task(
        alice,
        due_date=at("2025-03-03 09:00").replace(tzinfo=None),
        remind_before=dt.timedelta(days=2),
        timezone=NEW_YORK,
        recurrence_rule="FREQ=WEEKLY",
    )

    spawned = complete_and_relay(first)

    # The clocks change on Sunday 9 March: still 09:00 local two days before, 47 hours.
    assert spawned.remind_at == at("2025-03-08 09:00")
    assert spawned.due_date - spawned.remind_at == dt.timedelta(hours=47)


def test_creating_the_spawned_instance_publishes_task_created(first):
    with capture_events() as captured:
        spawned = complete_and_relay(first)

    [created] = [
        e
        for e in captured.events
        if e.event_type == "task.created" and e.partition_key == str(spawned.pk)
    ]
    assert sorted(created.topics) == ["task-events", "task-updates"]
    data = created.data
    assert data["task_id"] == spawned.pk
    assert data["task_data"]["parent"] == first.pk
    assert data["task_data"]["tags"] == ["bills", "Monthly"]


def test_the_completed_instance_publishes_its_bookkeeping(first):
    with capture_events() as captured:
        complete_and_relay(first)

    updates = [
        row
        for row in captured.of_type("task.updated")
        if row.partition_key == str(first.pk) and row.topic == "task-events"
    ]
    changed = set().union(*(row.data.get("changes", {}) for row in updates))
    assert {"last_triggered_at"} <= changed


def test_completing_a_task_that_does_not_repeat_spawns_nothing(alice, make_task):
    task = make_task(alice, due_date=at("2025-01-06 09:00"))

    with capture_events() as captured:
        assert complete_and_relay(task) is None
    [completed] = [e for e in captured.events if e.event_type == "task.completed"]
    assert completed.topics == ["task-events", "task-updates"]  # not task-recurrence
    assert Task.objects.count() == 1
