"""SMTP failures: back to due with a backoff, retried until sent (once) or failed for good and
shown in the admin; with a broker the retry is a Celery task with a countdown."""

from __future__ import annotations

import datetime as dt
import threading
import warnings

import pytest
from celery import signals as celery_signals
from django.utils import timezone

from events.jobs_client import DatabaseJobs
from events.relay import relay_pending
from notifications import services
from notifications.models import DeliveryState, ReminderDelivery
from tests.conftest import require_service
from tests.events.helpers import wait_until
from tests.factories import make_task
from tests.notifications.helpers import delivery, fresh, soon

REDIS_BROKER = "redis://127.0.0.1:6379/14"
CHANGELIST = "/admin/notifications/reminderdelivery/"


def due_reminder(user, **fields):
    """A task whose embedded job fired: its reminder.due event waits in the outbox."""
    remind_at = soon(5)
    fields.setdefault("title", "Renew the passport")
    task = make_task(user, due_date=soon(hours=1), remind_at=remind_at, **fields)
    relay_pending()  # the notification consumer schedules the job
    assert DatabaseJobs().fire_due(now=remind_at + dt.timedelta(seconds=1)) == 1
    assert delivery(task).state == DeliveryState.DUE
    return task


def freeze_time(monkeypatch, moment: dt.datetime) -> None:
    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_smtp_down_goes_back_to_due_then_the_sweep_delivers_it_once(alice, smtp, monkeypatch):
    task = due_reminder(alice)

    smtp.stop()  # connection refused
    started = timezone.now()
    relay_pending()  # reminder.due → the consumer tries to send
    finished = timezone.now()

    waiting = delivery(task)
    assert waiting.state == DeliveryState.DUE
    assert waiting.attempts == 1
    assert "Connection refused" in waiting.last_error
    backoff = dt.timedelta(seconds=30)  # REMINDER_RETRY_BASE_SECONDS for the first retry
    assert started + backoff <= waiting.next_attempt_at <= finished + backoff
    assert fresh(task).reminder_sent is False

    smtp.start()
    assert services.reminders_sweep().sent == 0  # back, but the retry is not due yet
    assert smtp.messages == []

    freeze_time(monkeypatch, waiting.next_attempt_at + dt.timedelta(seconds=1))
    assert services.reminders_sweep().sent == 1
    assert services.reminders_sweep().sent == 0  # and only once

    mail = smtp.only_message()
    assert mail.subject.startswith("Reminder: Renew the passport")
    sent = delivery(task)
    assert (sent.state, sent.attempts, sent.last_error) == (DeliveryState.SENT, 2, "")
    assert fresh(task).reminder_sent is True


def test_a_temporary_smtp_rejection_is_retried_with_the_same_message_id(alice, smtp):
    task = due_reminder(alice)
    smtp.fail()  # 451 at DATA

    relay_pending()
    rejected = delivery(task)
    assert (rejected.state, rejected.attempts) == (DeliveryState.DUE, 1)
    assert "451" in rejected.last_error

    smtp.recover()
    ReminderDelivery.objects.filter(pk=rejected.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert services.reminders_sweep().sent == 1

    [first_try] = smtp.rejected
    expected = f"<reminder-{rejected.pk}-task-{task.pk}@tideline.example.com>"
    assert (first_try.message_id, smtp.only_message().message_id) == (expected, expected)
    assert services.retry_delay(1) == dt.timedelta(seconds=30)
    assert services.retry_delay(2) == dt.timedelta(seconds=60)  # exponential backoff


def test_after_the_last_attempt_it_is_failed_and_shown_in_the_admin(
    alice, bob, smtp, settings, admin_client
):
    settings.REMINDER_MAX_ATTEMPTS = 3
    sent_task = due_reminder(bob, title="This one went out")
    relay_pending()
    assert delivery(sent_task).state == DeliveryState.SENT

    task = due_reminder(alice, title="Never arrives")
    smtp.fail()
    relay_pending()  # attempt 1
    for attempt in (2, 3):
        assert delivery(task).state == DeliveryState.DUE
        ReminderDelivery.objects.filter(task=task).update(
            next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
        )
        services.reminders_sweep()
        assert delivery(task).attempts == attempt

    failed = delivery(task)
    assert failed.state == DeliveryState.FAILED
    assert "451" in failed.last_error
    assert len(smtp.rejected) == 3
    ReminderDelivery.objects.filter(pk=failed.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )
    services.reminders_sweep()  # failed for good: no fourth attempt
    assert len(smtp.rejected) == 3
    assert fresh(task).reminder_sent is False

    response = admin_client.get(CHANGELIST, {"state__exact": "failed"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [failed]
    assert "Never arrives" in response.content.decode()
    assert "This one went out" not in response.content.decode()
    assert "Failed" in response.content.decode()


def test_the_admin_can_put_a_failed_delivery_back_for_the_sweep(
    alice, smtp, settings, admin_client, monkeypatch
):
    settings.REMINDER_MAX_ATTEMPTS = 1
    task = due_reminder(alice)
    smtp.fail()
    relay_pending()
    failed = delivery(task)
    assert failed.state == DeliveryState.FAILED
    smtp.recover()

    response = admin_client.post(
        CHANGELIST, {"action": "retry_now", "_selected_action": [failed.pk]}, follow=True
    )

    assert response.status_code == 200
    again = delivery(task)
    assert (again.state, again.attempts) == (DeliveryState.DUE, 0)
    freeze_time(monkeypatch, timezone.now() + dt.timedelta(minutes=3))
    assert services.reminders_sweep().sent == 1
    assert len(smtp.messages) == 1


# --------------------------------------------------------------------------- Celery


def drop_connections(app) -> None:
    """Forget the pooled connections and producers of the previous broker, so the next
    publish (here, or in another test afterwards) goes to the broker configured now.

    ``app.close()`` would also take the app off Celery's list of active apps, after which a
    ``@shared_task`` module imported later is never registered on it.
    """
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None


def ensure_registered(app, name: str) -> None:
    """Register the shared tasks on the app if it was finalized while off that list."""
    from celery import _state
    from celery.exceptions import DuplicateTaskNameWarning

    if name not in app.tasks:
        _state._register_app(app)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DuplicateTaskNameWarning)
            _state._announce_app_finalized(app)
    assert name in app.tasks


@pytest.fixture
def celery_redis(settings, monkeypatch):
    """The Celery app on a Redis broker (database 14), emptied before the test."""
    require_service("Redis", "127.0.0.1", 6379)
    import notifications.tasks  # noqa: F401  (the shared tasks, before the app is finalized)
    from todo_project.celery import app as celery_app

    settings.CELERY_BROKER_URL = REDIS_BROKER
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")
    changed = {
        "broker_url": REDIS_BROKER,
        "task_always_eager": False,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": False,
    }
    previous = {key: celery_app.conf.get(key) for key in changed}
    celery_app.conf.update(changed)
    drop_connections(celery_app)
    ensure_registered(celery_app, "notifications.tasks.deliver_reminder")
    celery_app.control.purge()
    try:
        yield celery_app
    finally:
        celery_app.control.purge()
        celery_app.conf.update(previous)
        drop_connections(celery_app)


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_an_smtp_failure_is_retried_by_a_celery_task(
    alice, smtp, settings, celery_redis
):
    from celery.contrib.testing.worker import start_worker

    settings.REMINDER_RETRY_BASE_SECONDS = 0.5
    published: list[dict] = []
    ran: list[tuple[str, object]] = []
    done = threading.Event()

    def on_publish(sender=None, headers=None, **kwargs):
        published.append({"task": sender, "eta": headers.get("eta"), "at": timezone.now()})

    def on_run(sender=None, retval=None, **kwargs):
        ran.append((sender.name, retval))
        if sender.name == "notifications.tasks.deliver_reminder":
            done.set()

    celery_signals.before_task_publish.connect(on_publish, weak=False)
    celery_signals.task_postrun.connect(on_run, weak=False)
    try:
        task = due_reminder(alice)
        smtp.fail()
        relay_pending()  # the consumer's send fails → deliver_reminder queued with a countdown
        failed_once = delivery(task)
        assert (failed_once.state, failed_once.attempts) == (DeliveryState.DUE, 1)
        [retry] = [p for p in published if p["task"] == "notifications.tasks.deliver_reminder"]
        eta = dt.datetime.fromisoformat(retry["eta"])
        assert dt.timedelta(seconds=0.3) <= eta - retry["at"] <= dt.timedelta(seconds=1)
        smtp.recover()

        # A real worker on the broker runs the retry at its ETA (and the relay kicks queued
        # by the commits, which find nothing left to do). No database reads meanwhile: the
        # in-memory SQLite test database would lock the worker out.
        with start_worker(celery_redis, perform_ping_check=False, pool="solo", loglevel="WARNING"):
            assert done.wait(timeout=15), ran
            wait_until(lambda: len(smtp.messages) == 1, timeout=5)
    finally:
        celery_signals.before_task_publish.disconnect(on_publish)
        celery_signals.task_postrun.disconnect(on_run)

    assert ("notifications.tasks.deliver_reminder", DeliveryState.SENT) in ran
    assert len(smtp.messages) == 1
    sent = delivery(task)
    assert (sent.state, sent.attempts) == (DeliveryState.SENT, 2)
    assert fresh(task).reminder_sent is True
