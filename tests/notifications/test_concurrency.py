"""Races that must still end in one e-mail: the same job fired from several threads, the sweep
and the job at once, two workers on one delivery, one event delivered to two replicas, two
embedded schedulers. PostgreSQL only (real row locks, one connection per thread)."""

from __future__ import annotations

import datetime as dt

import pytest

from events.jobs_client import DatabaseJobs
from events.registry import EventType
from events.relay import relay_pending
from notifications import services
from notifications.models import DeliveryState
from tests.factories import make_task
from tests.notifications.helpers import (
    deliveries,
    delivery,
    fresh,
    reminder_job,
    require_postgresql,
    soon,
)
from tests.support.concurrency import run_in_threads
from tests.support.events import capture_events
from tests.support.fake_dapr import SUCCESS

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 6


@pytest.fixture(autouse=True)
def postgresql_only():
    require_postgresql()


def scheduled(dapr, user, **fields):
    fields.setdefault("title", "Board meeting")
    fields.setdefault("due_date", soon(hours=3))
    fields.setdefault("remind_at", soon(hours=2))
    task = make_task(user, **fields)
    dapr.pump()
    assert dapr.job(reminder_job(task)) is not None
    return task


def test_the_same_job_triggered_from_several_threads_sends_one_email(dapr, smtp, alice):
    task = scheduled(dapr, alice)
    name = reminder_job(task)
    data = dapr.job(name)["data"]

    with capture_events() as captured:
        statuses = run_in_threads(THREADS, lambda i: dapr.post_job(name, data))
        dapr.pump()

    assert statuses == [200] * THREADS
    assert len(captured.of_type(EventType.REMINDER_DUE, task_id=task.pk)) == 1
    assert len(smtp.messages) == 1
    assert delivery(task).state == DeliveryState.SENT


def test_the_sweep_and_the_job_at_once_send_one_email(dapr, smtp, alice):
    services.register_sweep_job()
    # Due a minute ago: both the one-shot job and the sweep want to send it.
    task = scheduled(dapr, alice, remind_at=soon(minutes=-1), due_date=soon(hours=1))
    name = reminder_job(task)
    assert delivery(task).state == DeliveryState.SCHEDULED

    jobs = [services.SWEEP_JOB_NAME, name]
    with capture_events() as captured:
        statuses = run_in_threads(2, lambda i: dapr.trigger(jobs[i]))
        dapr.pump()

    assert statuses == [200, 200]
    assert len(captured.of_type(EventType.REMINDER_DUE, task_id=task.pk)) == 1
    assert len(smtp.messages) == 1
    assert [d.state for d in deliveries(task)] == [DeliveryState.SENT]


def test_two_workers_on_the_same_due_delivery_send_one_email(dapr, smtp, alice):
    task = scheduled(dapr, alice)
    assert dapr.trigger(reminder_job(task)) == 200  # due, its reminder.due not relayed yet
    due = delivery(task)
    assert due.state == DeliveryState.DUE

    results = run_in_threads(THREADS, lambda i: services.reminder_deliver(due.pk))

    assert sorted(results) == ["not-claimed"] * (THREADS - 1) + [DeliveryState.SENT]
    assert len(smtp.messages) == 1
    dapr.pump()  # the reminder.due event arrives afterwards and finds nothing to do
    assert len(smtp.messages) == 1
    sent = delivery(task)
    assert (sent.state, sent.attempts) == (DeliveryState.SENT, 1)
    assert fresh(task).reminder_sent is True


def test_one_reminder_due_event_delivered_to_several_replicas_sends_one_email(dapr, smtp, alice):
    task = scheduled(dapr, alice)
    with capture_events() as captured:
        assert dapr.trigger(reminder_job(task)) == 200
    [row] = captured.of_type(EventType.REMINDER_DUE, task_id=task.pk)
    relay_pending()  # published, not delivered yet
    [event] = dapr.events("task-reminders")

    outcomes = run_in_threads(THREADS, lambda i: dapr.sidecar.deliver("task-reminders", event))

    assert event["id"] == str(row.id)
    assert outcomes == [SUCCESS] * THREADS
    assert len(smtp.messages) == 1
    assert delivery(task).attempts == 1


def test_two_embedded_schedulers_fire_a_one_shot_job_once(alice, smtp):
    remind_at = soon(seconds=2)
    task = make_task(alice, title="Embedded race", due_date=soon(hours=1), remind_at=remind_at)
    relay_pending()
    later = remind_at + dt.timedelta(seconds=1)

    with capture_events() as captured:
        fired = run_in_threads(THREADS, lambda i: DatabaseJobs().fire_due(now=later))
        relay_pending()

    assert sum(fired) == 1
    assert len(captured.of_type(EventType.REMINDER_DUE, task_id=task.pk)) == 1
    assert len(smtp.messages) == 1
