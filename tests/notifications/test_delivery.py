"""The job callback and the e-mail: exactly one message per reminder, with the right content,
over real SMTP, through the stand-in sidecar (real HTTP both ways)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from urllib.parse import urlsplit

import pytest
from django.urls import resolve

from events.registry import EventType
from notifications import services
from notifications.models import DeliveryState
from tasks.models import Task
from tests.factories import UserFactory, make_task
from tests.notifications.helpers import (
    SITE_URL,
    deliveries,
    delivery,
    fresh,
    iso,
    reminder_job,
    soon,
)
from tests.support.events import capture_events

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def scheduled_task(dapr, user, **fields) -> Task:
    """A task with a reminder whose job the notification consumer has scheduled."""
    fields.setdefault("title", "Quarterly report")
    fields.setdefault("due_date", soon(hours=3))
    fields.setdefault("remind_at", soon(hours=2))
    task = make_task(user, **fields)
    dapr.pump()
    assert dapr.job(reminder_job(task)) is not None
    return task


def test_the_job_callback_sends_one_email_with_the_right_content(dapr, smtp):
    carol = UserFactory(
        username="carol",
        email="carol@example.com",
        first_name="Carol",
        profile__timezone="Europe/Paris",
    )
    # 09:00 in New York, ten days from now: the e-mail shows it in Carol's zone, Paris.
    day = (dt.datetime.now(NEW_YORK) + dt.timedelta(days=10)).date()
    due = dt.datetime.combine(day, dt.time(9, 0), tzinfo=NEW_YORK)
    task = scheduled_task(
        dapr,
        carol,
        title="Quarterly report",
        description="Send the numbers to Dana & Lee.\nAttach the chart.",
        due_date=due,
        timezone="America/New_York",
        remind_at=due - dt.timedelta(hours=1),
    )
    name = reminder_job(task)

    with capture_events() as captured:
        assert dapr.trigger(name) == 200
        assert dapr.job(name) is None  # one-shot: gone once the callback succeeded
        assert delivery(task).state == DeliveryState.DUE
        outcomes = dapr.pump()

    assert ("task-reminders", "com.tideline.reminder.due.v1", "SUCCESS") in outcomes
    mail = smtp.only_message()
    paris = due.astimezone(PARIS)
    assert mail.mail_from == "reminders@tideline.example.com"
    assert mail.rcpt_tos == ["carol@example.com"]
    assert mail.message["To"] == "carol@example.com"
    assert mail.subject == (
        f"Reminder: Quarterly report (due {paris:%a} {paris.day} {paris:%b}, {paris:%H:%M})"
    )
    assert mail.message.get_content_type() == "multipart/alternative"
    full_due = f"{paris:%A} {paris.day} {paris:%B %Y}, {paris:%H:%M}"
    link = f"{SITE_URL}/tasks/{task.pk}/"
    text, html = mail.text, mail.html
    assert "Hello Carol," in text
    assert "Quarterly report" in text
    assert f"Due: {full_due} (Europe/Paris)" in text
    assert f"{due:%H:%M}" not in text  # never the task's New York time
    assert "Send the numbers to Dana & Lee.\nAttach the chart." in text
    assert f"Open the task: {link}" in text
    assert "Quarterly report" in html
    assert full_due in html and "(Europe/Paris)" in html
    assert "Send the numbers to Dana &amp; Lee." in html
    assert f'href="{link}"' in html
    assert resolve(urlsplit(link).path).kwargs == {"task_id": task.pk}  # a page of this app

    sent = delivery(task)
    assert mail.message_id == f"<reminder-{sent.pk}-task-{task.pk}@tideline.example.com>"
    assert (sent.state, sent.attempts, sent.last_error) == (DeliveryState.SENT, 1, "")
    assert sent.sent_at is not None and sent.due_at <= sent.claimed_at <= sent.sent_at
    assert fresh(task).reminder_sent is True
    # The task shows it was sent, and a live client is told so (task-updates).
    due_event, sent_event = captured.events
    assert due_event.event_type == EventType.REMINDER_DUE
    assert sent_event.event_type == EventType.TASK_UPDATED
    assert sent_event.topics == ["task-events", "task-updates"]
    assert sent_event.data["changes"] == {"reminder_sent": {"old": False, "new": True}}
    assert sent_event.data["task_data"]["reminder_sent"] is True


def test_the_same_job_triggered_twice_sends_one_email(dapr, smtp, alice):
    task = scheduled_task(dapr, alice)
    name = reminder_job(task)
    data = dapr.job(name)["data"]

    with capture_events() as captured:
        assert dapr.trigger(name) == 200
        assert dapr.post_job(name, data) == 200  # daprd delivers a job at least once
        dapr.pump()
        assert dapr.post_job(name, data) == 200  # and again after the e-mail went out
        dapr.pump()

    assert len(smtp.messages) == 1
    assert len(captured.of_type(EventType.REMINDER_DUE, task_id=task.pk)) == 1
    [sent] = deliveries(task)
    assert (sent.state, sent.attempts) == (DeliveryState.SENT, 1)


def test_the_same_reminder_due_event_delivered_twice_sends_one_email(dapr, smtp, alice):
    task = scheduled_task(dapr, alice)
    assert dapr.trigger(reminder_job(task)) == 200
    dapr.pump()
    [event] = dapr.events("task-reminders")

    assert dapr.sidecar.deliver("task-reminders", event) == "SUCCESS"  # a broker redelivery

    assert len(smtp.messages) == 1
    assert delivery(task).attempts == 1


def test_a_stale_trigger_after_a_change_sends_nothing(dapr, smtp, alice, api):
    task = scheduled_task(dapr, alice, remind_at=soon(hours=1))
    name = reminder_job(task)
    old_data = dapr.job(name)["data"]
    later = soon(hours=2)
    response = api.patch(f"/api/tasks/{task.pk}/", {"remind_at": iso(later)}, format="json")
    assert response.status_code == 200
    dapr.pump()
    assert dapr.job(name)["data"] == {"task_id": task.pk, "remind_at": iso(later)}

    # A trigger of the job as it was before the change (e.g. already in flight).
    with capture_events() as captured:
        assert dapr.post_job(name, old_data) == 200
        dapr.pump()

    assert smtp.messages == []
    assert captured.of_type(EventType.REMINDER_DUE, task_id=task.pk) == []
    states = [(d.remind_at, d.state) for d in deliveries(task)]
    assert states == [
        (task.remind_at, DeliveryState.SKIPPED),
        (later, DeliveryState.SCHEDULED),
    ]

    assert dapr.trigger(name) == 200  # the current job still delivers, once
    dapr.pump()
    assert len(smtp.messages) == 1


def test_a_trigger_for_a_completed_task_sends_nothing(dapr, smtp, alice, api):
    task = scheduled_task(dapr, alice)
    data = dapr.job(reminder_job(task))["data"]
    assert api.post(f"/api/tasks/{task.pk}/complete/").status_code == 200
    dapr.pump()

    assert dapr.post_job(reminder_job(task), data) == 200
    dapr.pump()

    assert smtp.messages == []
    assert [d.state for d in deliveries(task)] == [DeliveryState.SKIPPED]


@pytest.mark.parametrize("token", [None, "", "not-the-token"], ids=["missing", "empty", "wrong"])
def test_a_job_callback_without_the_app_token_is_rejected(dapr, smtp, alice, token):
    task = scheduled_task(dapr, alice)
    name = reminder_job(task)
    data = dapr.job(name)["data"]

    with capture_events() as captured:
        assert dapr.post_job(name, data, token=token) == 401
        assert dapr.post_job(services.SWEEP_JOB_NAME, {"type": "sweep"}, token=token) == 401

    assert delivery(task).state == DeliveryState.SCHEDULED
    assert captured.of_type(EventType.REMINDER_DUE) == []
    assert dapr.trigger(name) == 200  # the sidecar sends the right token
    dapr.pump()
    assert len(smtp.messages) == 1


@pytest.mark.parametrize(
    ("user_fields", "reason"),
    [
        ({"email": ""}, "the user has no e-mail address"),
        ({"profile__reminders_enabled": False}, "the user turned reminders off"),
    ],
    ids=["no-email", "reminders-off"],
)
def test_a_user_who_cannot_get_reminders_is_skipped_once(dapr, smtp, user_fields, reason):
    user = UserFactory(username="dave", **user_fields)
    task = scheduled_task(dapr, user)
    name = reminder_job(task)
    data = dapr.job(name)["data"]

    with capture_events() as captured:
        assert dapr.trigger(name) == 200
        dapr.pump()
        assert dapr.post_job(name, data) == 200  # a repeat changes nothing
        dapr.pump()
        services.reminders_sweep()  # nor does the safety net
        dapr.pump()

    assert smtp.messages == smtp.rejected == []
    [skipped] = deliveries(task)
    assert (skipped.state, skipped.detail, skipped.attempts) == (DeliveryState.SKIPPED, reason, 1)
    assert len(captured.of_type(EventType.REMINDER_DUE, task_id=task.pk)) == 1
    assert fresh(task).reminder_sent is False
    assert f"reminder:task:{task.pk}" not in dapr.state()


def test_reopening_a_completed_task_brings_its_reminder_back(dapr, smtp, alice, api):
    task = scheduled_task(dapr, alice)
    name = reminder_job(task)
    assert api.post(f"/api/tasks/{task.pk}/complete/").status_code == 200
    dapr.pump()
    assert dapr.job(name) is None

    assert api.post(f"/api/tasks/{task.pk}/reopen/").status_code == 200
    dapr.pump()

    assert dapr.job(name)["dueTime"] == iso(task.remind_at)
    assert [d.state for d in deliveries(task)] == [DeliveryState.SCHEDULED]
    assert dapr.trigger(name) == 200
    dapr.pump()
    assert len(smtp.messages) == 1


def test_choosing_an_earlier_reminder_time_again_still_reminds(dapr, smtp, alice, api):
    first_time, second_time = soon(hours=1), soon(hours=2)
    task = scheduled_task(dapr, alice, remind_at=first_time)
    name = reminder_job(task)
    for remind_at in (second_time, first_time):
        response = api.patch(f"/api/tasks/{task.pk}/", {"remind_at": iso(remind_at)}, format="json")
        assert response.status_code == 200
        dapr.pump()

    assert dapr.job(name)["data"] == {"task_id": task.pk, "remind_at": iso(first_time)}
    assert dapr.trigger(name) == 200
    dapr.pump()

    assert len(smtp.messages) == 1
    states = {d.remind_at: d.state for d in deliveries(task)}
    assert states == {first_time: DeliveryState.SENT, second_time: DeliveryState.SKIPPED}
