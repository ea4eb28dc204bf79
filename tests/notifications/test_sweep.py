"""The safety net: the repeating ``check-due-tasks`` job finds reminders whose job fired late or
never, marks the too-old ones missed, and mirrors its work in the state store; registering
it is idempotent."""

from __future__ import annotations

import datetime as dt
from io import StringIO

from django.core.management import call_command
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from events import background
from events.jobs_client import DatabaseJobs
from events.models import ScheduledJob, StateEntry
from events.registry import EventType
from events.relay import relay_pending
from notifications import services
from notifications.models import DeliveryState
from tests.factories import make_task
from tests.notifications.helpers import deliveries, delivery, fresh, iso, soon
from tests.support.events import capture_events

SWEEP = services.SWEEP_JOB_NAME
SWEEP_JOB = {"schedule": "@every 1m", "data": {"type": "sweep"}, "overwrite": True}


def unscheduled(user, **fields):
    """A task whose reminder time has passed but whose job never existed: it was written
    while nothing relayed its events (so no consumer scheduled a job or made a delivery)."""
    fields.setdefault("title", "Book the flights")
    fields.setdefault("due_date", soon(hours=1))
    task = make_task(user, **fields)
    assert deliveries(task) == []
    return task


# --------------------------------------------------------------------------- with Dapr


def test_the_sweep_job_over_http_sends_a_reminder_whose_job_never_fired(dapr, smtp, alice):
    services.register_sweep_job()
    task = unscheduled(alice, remind_at=soon(minutes=-5))
    started = timezone.now()

    with capture_events() as captured:
        assert dapr.trigger(SWEEP) == 200  # POST /job/check-due-tasks from the sidecar

    assert dapr.job(SWEEP) is not None  # a repeating job stays
    found = delivery(task)
    assert found.state == DeliveryState.DUE
    assert len(captured.of_type(EventType.REMINDER_DUE, task_id=task.pk)) == 1
    last_poll = dapr.state()[services.LAST_POLL_KEY]
    assert started <= parse_datetime(last_poll["timestamp"]) <= timezone.now()

    dapr.pump()  # reminder.due → e-mail (and the late task.created schedules a past job)
    assert len(smtp.messages) == 1
    assert fresh(task).reminder_sent is True

    assert dapr.trigger(f"reminder-task-{task.pk}") == 200  # the late job fires: no repeat
    assert dapr.trigger(SWEEP) == 200
    dapr.pump()
    assert len(smtp.messages) == 1


def test_a_sent_reminder_is_mirrored_in_the_state_store_with_a_ttl(dapr, smtp, alice, settings):
    settings.REMINDER_STATE_TTL_SECONDS = 3600
    remind_at = soon(hours=1)
    task = make_task(alice, due_date=soon(hours=2), remind_at=remind_at)
    dapr.pump()
    assert dapr.trigger(f"reminder-task-{task.pk}") == 200
    dapr.pump()
    sent = delivery(task)
    key = f"reminder:task:{task.pk}"

    mirrored = dapr.state()[key]
    assert mirrored == {
        "delivery_id": sent.pk,
        "remind_at": iso(remind_at),
        "processed_at": mirrored["processed_at"],
        "user_id": alice.pk,
    }
    assert parse_datetime(mirrored["processed_at"]) == sent.sent_at
    dapr.sidecar.advance_clock(3600 - 60)
    assert key in dapr.state()
    dapr.sidecar.advance_clock(120)
    assert key not in dapr.state()  # expired; the database row stays the truth
    assert delivery(task).state == DeliveryState.SENT


def test_register_jobs_registers_the_sweep_on_the_sidecar_and_can_run_twice(dapr, settings):
    out = StringIO()

    call_command("register_jobs", stdout=out)
    call_command("register_jobs", stdout=out)  # overwrite: no 409 the second time

    assert dapr.schedules(SWEEP) == [SWEEP_JOB, SWEEP_JOB]
    assert dapr.job(SWEEP) == {"name": SWEEP, "schedule": "@every 1m", "data": {"type": "sweep"}}
    assert out.getvalue().count("Registered job 'check-due-tasks'") == 2

    settings.REMINDER_SWEEP_SCHEDULE = "@every 30s"  # configurable
    services.register_sweep_job()
    assert dapr.job(SWEEP)["schedule"] == "@every 30s"


def test_the_notification_role_registers_the_sweep_at_start_up(dapr, settings):
    settings.EVENT_CONSUMERS = ["notifications"]

    background.run_start_hooks(attempts=1, delay=0)

    assert dapr.schedules(SWEEP) == [SWEEP_JOB]


def test_a_process_without_the_notification_role_registers_nothing(dapr, settings):
    settings.EVENT_CONSUMERS = ["recurrence"]

    background.run_start_hooks(attempts=1, delay=0)

    assert dapr.schedules(SWEEP) == []


# --------------------------------------------------------------------------- embedded


def test_reminders_sweep_finds_and_sends_a_reminder_whose_job_never_fired(alice, smtp):
    task = unscheduled(alice, remind_at=soon(minutes=-5))

    result = services.reminders_sweep()

    assert (result.discovered, result.became_due, result.missed) == (1, 1, 0)
    relay_pending()
    assert len(smtp.messages) == 1
    assert delivery(task).state == DeliveryState.SENT
    last_poll = StateEntry.objects.get(key=services.LAST_POLL_KEY)
    assert parse_datetime(last_poll.value["timestamp"]) <= timezone.now()


def test_old_reminders_are_marked_missed_not_sent(alice, smtp):
    scheduled_late = make_task(
        alice, title="Ninety minutes late", due_date=soon(hours=1), remind_at=soon(minutes=-90)
    )
    relay_pending()  # this one has its delivery row and job, but the job never fired
    assert delivery(scheduled_late).state == DeliveryState.SCHEDULED
    ancient = unscheduled(alice, title="Two hours late", remind_at=soon(hours=-2))
    recent = unscheduled(alice, title="Ten minutes late", remind_at=soon(minutes=-10))

    result = services.reminders_sweep()

    assert (result.discovered, result.missed, result.became_due) == (2, 2, 1)
    for task in (ancient, scheduled_late):
        missed = delivery(task)
        assert missed.state == DeliveryState.MISSED
        assert missed.detail == "too late to remind by the time it was found"
    relay_pending()
    assert [m.subject.split(" (")[0] for m in smtp.messages] == ["Reminder: Ten minutes late"]
    assert delivery(recent).state == DeliveryState.SENT

    # The late jobs fire at last, and the sweep runs again: still nothing for the missed ones.
    assert DatabaseJobs().fire_due(now=timezone.now()) == 3
    services.reminders_sweep()
    relay_pending()
    assert len(smtp.messages) == 1
    assert fresh(ancient).reminder_sent is False


def test_the_missed_window_is_configurable(alice, smtp, settings):
    settings.REMINDER_MISSED_AFTER_MINUTES = 5
    task = unscheduled(alice, remind_at=soon(minutes=-10))

    assert services.reminders_sweep().missed == 1

    assert delivery(task).state == DeliveryState.MISSED


def test_a_reminder_due_event_that_was_never_handled_is_sent_after_a_grace_period(
    alice, smtp, monkeypatch
):
    """The job made the delivery due, but its reminder.due event was lost."""
    task = unscheduled(alice, remind_at=soon(minutes=-1))
    services.reminders_sweep()  # due now; the event sits in the outbox, never relayed
    assert delivery(task).state == DeliveryState.DUE
    assert services.reminders_sweep().sent == 0  # within the grace period: the event's job

    later = timezone.now() + dt.timedelta(minutes=3)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert services.reminders_sweep().sent == 1

    relay_pending()  # the event turns up after all: no second e-mail
    assert len(smtp.messages) == 1


def test_a_sending_claim_left_by_a_crashed_worker_is_released_and_sent(alice, smtp, monkeypatch):
    task = unscheduled(alice, remind_at=soon(minutes=-1))
    services.reminders_sweep()
    # A worker claimed it and died before sending.
    assert services._claim(delivery(task).pk, timezone.now())
    assert delivery(task).state == DeliveryState.SENDING
    relay_pending()  # the reminder.due event cannot claim it either
    assert smtp.messages == []

    later = timezone.now() + dt.timedelta(minutes=11)  # past REMINDER_SENDING_LEASE_SECONDS
    monkeypatch.setattr(timezone, "now", lambda: later)
    result = services.reminders_sweep()

    assert (result.released, result.sent) == (1, 1)
    assert len(smtp.messages) == 1


def test_a_sent_reminder_is_mirrored_in_the_embedded_state_store_with_a_ttl(alice, smtp):
    task = unscheduled(alice, remind_at=soon(minutes=-1))
    services.reminders_sweep()
    relay_pending()
    sent = delivery(task)

    entry = StateEntry.objects.get(key=f"reminder:task:{task.pk}")

    assert entry.value["delivery_id"] == sent.pk
    assert entry.expires_at is not None
    assert abs(entry.expires_at - sent.sent_at - dt.timedelta(days=1)) < dt.timedelta(seconds=5)


def test_register_jobs_on_the_embedded_scheduler(db):
    call_command("register_jobs", stdout=StringIO())
    call_command("register_jobs", stdout=StringIO())

    job = ScheduledJob.objects.get(name=SWEEP)
    assert job.interval_seconds == 60
    assert job.data == {"type": "sweep"}


# ------------------------------------------------------------- late jobs and retries


def test_a_job_that_fires_long_after_its_time_marks_the_reminder_missed(smtp, alice):
    """After an outage (or on the first start after the demo data) the job can fire first:
    it is just as too late as when the sweep finds it."""
    task = make_task(alice, title="Stand-up", due_date=soon(hours=-2), remind_at=soon(hours=-3))
    relay_pending()  # the consumer schedules the (already past) job

    with capture_events() as captured:
        assert DatabaseJobs().fire_due() == 1
        relay_pending()

    assert delivery(task).state == DeliveryState.MISSED
    assert smtp.messages == []
    assert captured.of_type(EventType.REMINDER_DUE, task_id=task.pk) == []


def test_retrying_an_old_failed_delivery_from_the_admin_sends_it(smtp, alice, admin_client):
    task = make_task(
        alice, title="Renew passport", due_date=soon(hours=1), remind_at=soon(minutes=-1)
    )
    relay_pending()
    DatabaseJobs().fire_due()
    found = delivery(task)
    found.__class__.objects.filter(pk=found.pk).update(
        state=DeliveryState.FAILED, attempts=5, due_at=soon(hours=-5), last_error="451"
    )

    response = admin_client.post(
        "/admin/notifications/reminderdelivery/",
        {"action": "retry_now", "_selected_action": [found.pk]},
    )
    assert response.status_code == 302
    relay_pending()  # the new reminder.due reaches the consumer
    services.reminders_sweep(now=timezone.now() + dt.timedelta(hours=2))

    assert delivery(task).state == DeliveryState.SENT
    assert len(smtp.messages) == 1
