"""The embedded default (no sidecar, no broker): the jobs are database rows fired by the one
scheduler (driven here with ``DatabaseJobs().fire_due(now=...)``), events go in-process, and a
reminder ends as one e-mail on the real SMTP server."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from events.jobs_client import DatabaseJobs, jobs_client
from events.models import ScheduledJob, StateEntry
from events.registry import EventType
from events.relay import relay_pending
from notifications import services
from notifications.models import DeliveryState
from tests.factories import make_task
from tests.notifications.helpers import delivery, fresh, iso, reminder_job, soon
from tests.support.events import capture_events

SECOND = dt.timedelta(seconds=1)


def test_a_reminder_a_few_seconds_ahead_produces_one_email(api, smtp):
    assert isinstance(jobs_client(), DatabaseJobs)
    remind_at = soon(3)
    response = api.post(
        "/api/tasks/",
        {"title": "Take the cake out", "due_date": iso(soon(hours=1)), "remind_at": iso(remind_at)},
        format="json",
    )
    assert response.status_code == 201, response.json()
    task_id = response.json()["id"]
    name = reminder_job(task_id)

    relay_pending()  # task.created → the notification consumer schedules the job

    job = ScheduledJob.objects.get(name=name)
    assert job.due_at == remind_at
    assert job.interval_seconds is None
    assert job.data == {"task_id": task_id, "remind_at": iso(remind_at)}

    with capture_events() as captured:
        assert DatabaseJobs().fire_due(now=remind_at - SECOND) == 0  # never early
        assert DatabaseJobs().fire_due(now=remind_at + SECOND) == 1  # the same job callback
    assert not ScheduledJob.objects.filter(name=name).exists()
    assert len(captured.of_type(EventType.REMINDER_DUE, task_id=task_id)) == 1
    assert smtp.messages == []  # the e-mail goes out when reminder.due is delivered

    relay_pending()  # reminder.due, in-process, to the notification consumer

    mail = smtp.only_message()
    assert mail.rcpt_tos == ["alice@example.com"]
    assert mail.subject.startswith("Reminder: Take the cake out")
    assert api.get(f"/api/tasks/{task_id}/").json()["reminder_sent"] is True
    relay_pending()
    assert len(smtp.messages) == 1


def test_a_one_shot_job_fired_twice_in_a_row_runs_once(db, job_calls):
    DatabaseJobs().schedule("test-job-once", data={"n": 1}, due_time=soon(-1))

    assert DatabaseJobs().fire_due() == 1
    assert DatabaseJobs().fire_due() == 0

    assert job_calls == [("test-job-once", {"n": 1})]
    assert not ScheduledJob.objects.exists()


def test_a_reminder_job_fired_twice_in_a_row_sends_one_email(alice, smtp):
    remind_at = soon(2)
    task = make_task(alice, due_date=soon(hours=1), remind_at=remind_at)
    relay_pending()

    fired = [DatabaseJobs().fire_due(now=remind_at + SECOND * n) for n in (1, 2)]
    relay_pending()

    assert fired == [1, 0]
    assert len(smtp.messages) == 1
    assert delivery(task).state == DeliveryState.SENT


def test_a_repeating_job_is_rescheduled(db, job_calls):
    DatabaseJobs().schedule("test-job-every", data={"n": 2}, schedule="@every 1m")
    job = ScheduledJob.objects.get(name="test-job-every")
    assert job.interval_seconds == 60
    first_due = job.due_at
    assert first_due > timezone.now()

    assert DatabaseJobs().fire_due(now=first_due + SECOND) == 1
    assert ScheduledJob.objects.get(name="test-job-every").due_at == first_due + 60 * SECOND
    assert DatabaseJobs().fire_due(now=first_due + 2 * SECOND) == 0  # not due again yet
    assert DatabaseJobs().fire_due(now=first_due + 61 * SECOND) == 1
    # After a long stop it runs once, then keeps its pace from now on (no burst of catch-ups).
    much_later = first_due + dt.timedelta(hours=1)
    assert DatabaseJobs().fire_due(now=much_later) == 1
    assert DatabaseJobs().fire_due(now=much_later) == 0
    assert job_calls == [("test-job-every", {"n": 2})] * 3


def test_the_embedded_sweep_job_runs_every_minute(alice, smtp):
    services.register_sweep_job()
    sweep = ScheduledJob.objects.get(name=services.SWEEP_JOB_NAME)
    assert sweep.interval_seconds == 60
    task = make_task(alice, due_date=soon(hours=1), remind_at=soon(minutes=-1))
    ScheduledJob.objects.filter(name=reminder_job(task)).delete()  # relay not run: no job anyway

    assert DatabaseJobs().fire_due(now=sweep.due_at + SECOND) == 1
    relay_pending()

    assert len(smtp.messages) == 1
    assert fresh(task).reminder_sent is True
    assert ScheduledJob.objects.get(name=services.SWEEP_JOB_NAME).due_at > sweep.due_at
    last_poll = StateEntry.objects.get(key=services.LAST_POLL_KEY).value["timestamp"]
    assert parse_datetime(last_poll) <= timezone.now()


def test_a_failing_one_shot_job_is_retried_like_daprs_failure_policy(db, job_calls, monkeypatch):
    attempts = []

    def flaky(name, data):
        attempts.append(name)
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    monkeypatch.setattr("events.jobs_client.find_job_handler", lambda name: flaky)
    now = timezone.now()
    DatabaseJobs().schedule("test-job-flaky", data={}, due_time=now)

    fired = [DatabaseJobs().fire_due(now=now + SECOND * n) for n in range(5)]

    assert fired == [1, 1, 1, 0, 0]
    assert len(attempts) == 3
    assert not ScheduledJob.objects.exists()
