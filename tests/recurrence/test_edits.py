"""Edits of a series: a new rule applies from the edited instance on, stopping ends it,
deleting an instance keeps the rest, and an exhausted rule marks the series ended."""

from __future__ import annotations

import datetime as dt

import pytest

from recurrence.models import RecurrenceSeries
from tasks.models import Task
from tasks.services import task_delete, task_reopen, task_update
from tests.factories import make_task
from tests.recurrence.helpers import (
    NEW_YORK,
    at,
    complete,
    complete_and_relay,
    follow_series,
    local_due,
)
from tests.support.events import capture_events


def stamp(task) -> str:
    return local_due(task).strftime("%a %Y-%m-%d %H:%M")


def series_of(task) -> RecurrenceSeries:
    return RecurrenceSeries.objects.get(pk=Task.objects.get(pk=task.pk).series_id)


@pytest.fixture
def daily(alice, make_task):
    """Every day at 09:00 New York from Monday 6 January 2025 (or as ``rule`` says)."""

    def start(rule: str = "FREQ=DAILY") -> Task:
        return make_task(
            alice,
            title="Stand-up",
            due_date=at("2025-01-06 09:00").replace(tzinfo=None),
            timezone=NEW_YORK,
            recurrence_rule=rule,
        )

    return start


def test_a_new_rule_on_a_pending_instance_applies_from_that_instance_on(api, daily):
    first = daily()
    second = complete_and_relay(first)

    response = api.patch(f"/api/tasks/{second.pk}/", {"recurrence_rule": "FREQ=WEEKLY;BYDAY=FR"})

    assert response.status_code == 200, response.json()
    second.refresh_from_db()
    assert second.series_id != first.series_id
    assert series_of(second).rule == "FREQ=WEEKLY;BYDAY=FR"
    assert series_of(second).anchor == at("2025-01-07 09:00").replace(tzinfo=None)
    assert series_of(first).ended  # the old rule no longer spawns anything
    dues, _ = follow_series(second, limit=3)
    assert [due.strftime("%a %Y-%m-%d") for due in dues] == [
        "Tue 2025-01-07",
        "Fri 2025-01-10",
        "Fri 2025-01-17",
    ]


def test_a_new_rule_keeps_the_completed_instances_as_they_were(daily):
    first = daily()
    second = complete_and_relay(first)

    task_update(task=second, data={"recurrence_rule": "FREQ=WEEKLY"})

    first.refresh_from_db()
    assert first.recurrence_rule == "FREQ=DAILY"
    assert first.series.rule == "FREQ=DAILY"


def test_moving_a_pending_instance_re_anchors_the_series_on_it(daily):
    first = daily("FREQ=WEEKLY")
    second = complete_and_relay(first)
    assert stamp(second) == "Mon 2025-01-13 09:00"

    task_update(task=second, data={"due_date": at("2025-01-15 14:00")})
    third = complete_and_relay(second)

    assert stamp(third) == "Wed 2025-01-22 14:00"


def test_an_edit_outside_the_recurrence_keeps_the_series(daily):
    first = daily()

    task, _ = task_update(task=first, data={"title": "Daily stand-up", "priority": "high"})

    assert task.series_id == first.series_id
    assert not series_of(first).ended


@pytest.mark.parametrize(
    "stop",
    [{"recurrence_rule": ""}, {"recurrence_type": "none"}],
    ids=["clear-the-rule", "clear-the-preset"],
)
def test_stop_repeating_ends_the_series_and_completion_spawns_nothing(alice, make_task, stop):
    recurrence = (
        {"recurrence_rule": "FREQ=DAILY"}
        if "recurrence_rule" in stop
        else {"recurrence_type": "daily"}
    )
    first = make_task(alice, due_date=at("2025-01-06 09:00"), timezone=NEW_YORK, **recurrence)
    second = complete_and_relay(first)

    task_update(task=second, data=stop)

    assert series_of(first).ended
    with capture_events() as captured:
        assert complete_and_relay(second) is None
    [completed] = [e for e in captured.events if e.event_type == "task.completed"]
    assert completed.partition_key == str(second.pk)
    assert completed.topics == ["task-events", "task-updates"]  # not task-recurrence
    second.refresh_from_db()
    assert second.next_occurrence_at is None


def test_stop_repeating_over_the_api(api, daily):
    first = daily()

    response = api.patch(f"/api/tasks/{first.pk}/", {"recurrence_rule": ""})
    completed = api.post(f"/api/tasks/{first.pk}/complete/")

    assert response.json()["recurrence_description"] == ""
    assert completed.json()["next_occurrence_at"] is None
    assert complete_and_relay(first) is None


def test_deleting_the_first_instance_keeps_the_series(api, daily):
    first = daily("FREQ=DAILY;COUNT=3")
    second = complete_and_relay(first)

    assert api.delete(f"/api/tasks/{first.pk}/").status_code == 204

    assert not series_of(second).ended
    third = complete_and_relay(second)
    assert stamp(third) == "Wed 2025-01-08 09:00"
    assert third.series_id == second.series_id
    # COUNT=3 still counts the deleted first instance.
    assert complete_and_relay(third) is None
    assert series_of(third).ended


def test_deleting_an_instance_in_the_middle_keeps_the_rest(daily):
    first = daily()
    second = complete_and_relay(first)
    third = complete_and_relay(second)

    task_delete(task=Task.objects.get(pk=second.pk))
    fourth = complete_and_relay(third)

    assert stamp(fourth) == "Thu 2025-01-09 09:00"
    assert Task.objects.filter(series_id=first.series_id).count() == 3


@pytest.mark.parametrize(
    ("rule", "instances"),
    [
        ("FREQ=DAILY;COUNT=2", 2),
        ("FREQ=DAILY;UNTIL=20250108T140000Z", 3),  # 09:00 New York on the 8th is the last
    ],
    ids=["count", "until"],
)
def test_an_exhausted_rule_marks_the_series_ended(daily, rule, instances):
    first = daily(rule)

    dues, last = follow_series(first, limit=instances + 2)

    assert len(dues) == instances
    series = series_of(first)
    assert series.ended
    assert series.ended_at is not None
    last.refresh_from_db()
    assert last.next_occurrence_at is None


def test_reopening_and_completing_the_last_instance_spawns_nothing(daily):
    first = daily("FREQ=DAILY;COUNT=2")
    second = complete_and_relay(first)
    assert complete_and_relay(second) is None

    task_reopen(task=Task.objects.get(pk=second.pk))
    complete(second)

    assert complete_and_relay(second) is None
    assert Task.objects.count() == 2


@pytest.mark.parametrize("mode", ["schedule", "completion"])
def test_moving_an_instance_later_keeps_the_series_count(alice, mode):
    """A one-hour "snooze" of the second of three instances does not add a fourth."""
    first = make_task(
        alice,
        title="Three times",
        due_date=dt.datetime(2030, 1, 1, 9, 0),
        timezone="UTC",
        recurrence_rule="FREQ=DAILY;COUNT=3",
        recurrence_mode=mode,
    )
    second = complete_and_relay(first, when=dt.datetime(2030, 1, 1, 9, 30, tzinfo=dt.UTC))
    second, _ = task_update(task=second, data={"due_date": second.due_date + dt.timedelta(hours=1)})

    third = complete_and_relay(second, when=second.due_date)
    assert third is not None
    assert complete_and_relay(third, when=third.due_date) is None
    assert Task.objects.filter(user=alice).count() == 3
