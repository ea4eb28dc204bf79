"""Recurring tasks: every spawned instance gets its own reminder, at the same offset before its
due date, and its own scheduled job (through the sidecar, as in production)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from notifications.models import DeliveryState
from tasks.models import Task
from tests.notifications.helpers import deliveries, iso, reminder_job

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def local(value: dt.datetime) -> dt.datetime:
    return value.astimezone(PARIS).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("reminder", "offset"),
    [
        ({"remind_before": "00:15:00"}, dt.timedelta(minutes=15)),
        ({"remind_before": "1 day"}, dt.timedelta(days=1)),
        ({"remind_at": -dt.timedelta(hours=2)}, dt.timedelta(hours=2)),
    ],
    ids=["15-minutes-before", "1-day-before", "absolute-2-hours-before"],
)
def test_the_next_instance_gets_its_own_reminder_at_the_same_offset(
    api, dapr, smtp, reminder, offset
):
    day = (dt.datetime.now(PARIS) + dt.timedelta(days=3)).date()
    due = dt.datetime.combine(day, dt.time(9, 30), tzinfo=PARIS)
    if "remind_at" in reminder:
        reminder = {"remind_at": iso(due + reminder["remind_at"])}
    response = api.post(
        "/api/tasks/",
        {
            "title": "Stand-up",
            "due_date": iso(due),
            "timezone": "Europe/Paris",
            "recurrence_type": "weekly",
            **reminder,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    first = Task.objects.get(pk=response.json()["id"])
    dapr.pump()
    assert dapr.job(reminder_job(first))["dueTime"] == iso(first.remind_at)

    assert api.post(f"/api/tasks/{first.pk}/complete/").status_code == 200
    dapr.pump()  # task-recurrence spawns the next instance; its task.created schedules a job

    following = Task.objects.get(parent=first)
    assert local(following.due_date) == local(due) + dt.timedelta(weeks=1)
    assert local(following.due_date) - local(following.remind_at) == offset  # wall clock
    assert following.reminder_sent is False
    job = dapr.job(reminder_job(following))
    assert job["dueTime"] == iso(following.remind_at)
    assert job["data"] == {"task_id": following.pk, "remind_at": iso(following.remind_at)}
    assert [d.state for d in deliveries(following)] == [DeliveryState.SCHEDULED]
    assert dapr.job(reminder_job(first)) is None  # the completed one's job is gone

    assert dapr.trigger(reminder_job(following)) == 200
    dapr.pump()
    assert len(smtp.messages) == 1
    assert smtp.messages[0].subject.startswith("Reminder: Stand-up")


@pytest.mark.parametrize(
    ("reminder", "expected_remind_at"),
    [
        ({"remind_before": "1 day"}, "2030-03-31T09:30:00+02:00"),
        ({"remind_at": "2030-03-25T07:30:00"}, "2030-04-01T07:30:00+02:00"),
    ],
    ids=["1-day-before", "absolute-2-hours-before"],
)
def test_the_offset_is_kept_in_local_time_when_the_series_crosses_dst(
    api, dapr, reminder, expected_remind_at
):
    # Europe/Paris goes to summer time on Sunday 31 March 2030 at 02:00 (+01:00 → +02:00).
    response = api.post(
        "/api/tasks/",
        {
            "title": "Weekly review",
            "due_date": "2030-03-25T09:30:00",
            "timezone": "Europe/Paris",
            "recurrence_type": "weekly",
            **reminder,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    first = response.json()
    dapr.pump()
    assert api.post(f"/api/tasks/{first['id']}/complete/").status_code == 200
    dapr.pump()

    following = Task.objects.get(parent_id=first["id"])
    shown = api.get(f"/api/tasks/{following.pk}/").json()
    assert shown["due_date"] == "2030-04-01T09:30:00+02:00"
    assert shown["remind_at"] == expected_remind_at
    assert dapr.job(reminder_job(following))["dueTime"] == iso(following.remind_at)
