"""Reminder times through the REST API: remind_at, remind_before, validation, reminder_sent."""

from __future__ import annotations

import datetime as dt

from events.jobs_client import DatabaseJobs
from events.models import ScheduledJob
from events.relay import relay_pending
from notifications.models import DeliveryState
from tasks.models import Task
from tests.notifications.helpers import deliveries, iso, reminder_job, soon

UTC = dt.UTC


def test_remind_before_one_day_is_the_same_local_time_the_day_before_across_dst(api):
    # US daylight saving time ends on Sunday 1 November 2026 at 02:00 (EDT -4 → EST -5).
    response = api.post(
        "/api/tasks/",
        {
            "title": "Dentist",
            "due_date": "2026-11-01T09:00:00",
            "timezone": "America/New_York",
            "remind_before": "1 day",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["due_date"] == "2026-11-01T09:00:00-05:00"
    assert body["remind_at"] == "2026-10-31T09:00:00-04:00"  # 09:00 local, not 10:00
    assert body["remind_before"] == "P1D"
    task = Task.objects.get(pk=body["id"])
    assert task.remind_at == dt.datetime(2026, 10, 31, 13, 0, tzinfo=UTC)
    assert task.due_date - task.remind_at == dt.timedelta(hours=25)


def test_moving_the_due_date_moves_a_relative_reminder_in_local_time(api):
    created = api.post(
        "/api/tasks/",
        {
            "title": "Dentist",
            "due_date": "2026-10-31T09:00:00",
            "timezone": "America/New_York",
            "remind_before": "1 day",
        },
        format="json",
    ).json()
    assert created["remind_at"] == "2026-10-30T09:00:00-04:00"

    response = api.patch(
        f"/api/tasks/{created['id']}/", {"due_date": "2026-11-02T09:00:00"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["remind_at"] == "2026-11-01T09:00:00-05:00"
    assert response.json()["remind_before"] == "P1D"


def test_remind_before_in_minutes(api):
    response = api.post(
        "/api/tasks/",
        {
            "title": "Call",
            "due_date": "2026-12-01T10:00:00Z",
            "timezone": "UTC",
            "remind_before": "00:15:00",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["remind_at"] == "2026-12-01T09:45:00Z"


def test_remind_before_without_a_due_date_is_rejected(api):
    response = api.post(
        "/api/tasks/", {"title": "No date", "remind_before": "1 day"}, format="json"
    )

    assert response.status_code == 400
    assert "remind_before" in response.json()
    assert not Task.objects.exists()


def test_removing_the_due_date_of_a_relative_reminder_is_rejected(api):
    created = api.post(
        "/api/tasks/",
        {"title": "Call", "due_date": "2026-12-01T10:00:00Z", "remind_before": "01:00:00"},
        format="json",
    ).json()

    response = api.patch(f"/api/tasks/{created['id']}/", {"due_date": None}, format="json")

    assert response.status_code == 400
    assert "remind_before" in response.json()


def test_a_reminder_after_the_due_date_is_rejected(api):
    response = api.post(
        "/api/tasks/",
        {
            "title": "Too late",
            "due_date": "2026-12-01T10:00:00Z",
            "remind_at": "2026-12-01T10:00:01Z",
        },
        format="json",
    )

    assert response.status_code == 400
    assert "remind_at" in response.json()
    assert not Task.objects.exists()


def test_a_reminder_after_the_due_date_is_rejected_on_update(api):
    created = api.post(
        "/api/tasks/",
        {"title": "Soon", "due_date": "2026-12-01T10:00:00Z", "remind_at": "2026-12-01T09:00:00Z"},
        format="json",
    ).json()

    response = api.patch(
        f"/api/tasks/{created['id']}/", {"remind_at": "2026-12-02T09:00:00Z"}, format="json"
    )

    assert response.status_code == 400
    assert "remind_at" in response.json()
    assert Task.objects.get(pk=created["id"]).remind_at == dt.datetime(2026, 12, 1, 9, tzinfo=UTC)


def test_changing_remind_at_resets_reminder_sent(api, smtp):
    remind_at = soon(5)
    created = api.post(
        "/api/tasks/",
        {"title": "Water the plants", "due_date": iso(soon(hours=2)), "remind_at": iso(remind_at)},
        format="json",
    ).json()
    relay_pending()  # the notification consumer schedules the embedded job
    DatabaseJobs().fire_due(now=remind_at + dt.timedelta(seconds=1))
    relay_pending()  # reminder.due → e-mail
    assert len(smtp.messages) == 1
    assert api.get(f"/api/tasks/{created['id']}/").json()["reminder_sent"] is True

    later = soon(minutes=30)
    response = api.patch(f"/api/tasks/{created['id']}/", {"remind_at": iso(later)}, format="json")

    assert response.status_code == 200
    assert response.json()["reminder_sent"] is False
    relay_pending()
    states = [(d.remind_at, d.state) for d in deliveries(created["id"])]
    assert states == [(remind_at, DeliveryState.SENT), (later, DeliveryState.SCHEDULED)]
    assert ScheduledJob.objects.get(name=reminder_job(created["id"])).due_at == later
