"""The embedded default (in-process delivery, the background worker) and the Celery mode."""

from __future__ import annotations

import uuid

import pytest
import redis
from celery import signals as celery_signals

from events import dispatch, relay
from events.background import BackgroundWorker
from events.cloudevents import build_envelope
from events.dispatch import RetryLater, retry_consumer_failures
from events.models import ConsumerFailure, OutboxEvent, OutboxState
from events.relay import relay_pending
from events.transports import InProcessTransport, get_transport
from tests.conftest import require_service
from tests.events.helpers import rows, wait_until
from tests.factories import make_task

REDIS_BROKER = "redis://127.0.0.1:6379/15"


@pytest.fixture
def handed_over(monkeypatch) -> list[tuple[str, dict]]:
    """Every (topic, envelope) handed to ``events.dispatch.deliver``."""
    calls: list[tuple[str, dict]] = []
    real_deliver = dispatch.deliver

    def spy(topic, envelope):
        calls.append((topic, envelope))
        return real_deliver(topic, envelope)

    monkeypatch.setattr(dispatch, "deliver", spy)
    return calls


def test_the_default_transport_is_in_process(settings):
    assert isinstance(get_transport(), InProcessTransport)
    settings.DAPR_ENABLED = True
    assert not isinstance(get_transport(), InProcessTransport)


def test_embedded_default_delivers_in_process_end_to_end(api, consumer, handed_over):
    response = api.post("/api/tasks/", {"title": "Embedded", "tags": ["solo"]})
    assert response.status_code == 201
    assert consumer.effects() == []  # nothing is delivered inside the request's transaction

    stats = relay_pending()

    assert stats.delivered == 2
    outbox = rows()
    assert {r.state for r in outbox} == {OutboxState.DELIVERED}
    # The same envelopes the Dapr transport publishes, handed to the same dispatcher.
    assert handed_over == [(row.topic, build_envelope(row)) for row in outbox]
    events_row = next(r for r in outbox if r.topic == "task-events")
    effects = consumer.effects()
    assert [e["event_id"] for e in effects] == [str(events_row.id)]
    assert effects[0]["type"] == "com.tideline.task.created.v1"
    assert effects[0]["data"]["task_id"] == response.json()["id"]
    assert effects[0]["data"]["task_data"]["tags"] == ["solo"]


def test_in_process_a_failed_consumer_holds_the_event_not_the_row(alice, consumer):
    make_task(alice)
    consumer.fail_with = RetryLater("not now")

    stats = relay_pending()

    assert (stats.delivered, stats.retried) == (2, 0)  # the task's queue goes on at once
    row = OutboxEvent.objects.get(topic="task-events")
    assert row.state == OutboxState.DELIVERED
    held = ConsumerFailure.objects.get()
    assert (held.event_id, held.attempts) == (str(row.id), 1)
    assert consumer.effects() == []

    consumer.fail_with = None
    retry_consumer_failures(now=held.next_attempt_at)
    assert len(consumer.effects()) == 1
    assert not ConsumerFailure.objects.exists()


def test_completing_a_recurring_task_reaches_the_recurrence_topic_in_process(alice, consumer):
    task = make_task(alice, recurrence_type="daily")
    from tasks import services

    services.task_complete(task=task)
    relay_pending()

    topics = [(e["topic"], e["event_type"]) for e in consumer.effects()]
    assert ("task-recurrence", "task.completed") in topics
    assert ("task-events", "task.completed") in topics


@pytest.mark.django_db(transaction=True)
def test_the_background_worker_delivers_after_commit_without_a_relay_call(
    alice, consumer, background_worker
):
    task = make_task(alice, title="Kicked")  # a real commit: on_commit kicks the worker

    # Wait without touching the database (the in-memory SQLite test database has table
    # locks that a polling reader would turn into failed worker iterations).
    wait_until(lambda: consumer.calls >= 1, timeout=5)
    background_worker.stop(timeout=10)  # lets the worker finish its batch
    assert [r.state for r in rows()] == [OutboxState.DELIVERED] * 2
    effects = consumer.effects()
    assert [e["data"]["task_id"] for e in effects] == [task.pk]


def drop_connection_pools(celery_app) -> None:
    """Close the broker connections this test opened (``app.close()`` would unregister the
    app, and with it every ``shared_task`` imported later)."""
    pool = celery_app.__dict__.get("_pool")
    if pool is not None:
        pool.force_close_all()
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_sweep_delivers_what_no_kick_announced(
    alice, consumer, settings, tmp_path, monkeypatch
):
    monkeypatch.setattr(relay, "request_relay", lambda: None)  # the kick is lost
    task = make_task(alice, title="Missed kick")
    settings.VAR_DIR = tmp_path
    worker = BackgroundWorker()
    worker.start()  # not kicked: only the scheduler's periodic sweep can deliver
    try:
        wait_until(lambda: consumer.calls >= 1, timeout=5)
        was_scheduler = worker.is_scheduler
    finally:
        worker.stop(timeout=10)
    assert was_scheduler
    assert not worker.is_scheduler  # stopping releases the lock for another process
    assert [r.state for r in rows()] == [OutboxState.DELIVERED] * 2
    assert [e["data"]["task_id"] for e in consumer.effects()] == [task.pk]


@pytest.mark.service("redis")
@pytest.mark.django_db(transaction=True)
def test_with_a_broker_the_relay_runs_as_celery_tasks(alice, fake_dapr, settings, monkeypatch):
    require_service("Redis", "127.0.0.1", 6379)
    from celery.contrib.testing.worker import start_worker

    from todo_project.celery import app as celery_app

    settings.CELERY_BROKER_URL = REDIS_BROKER
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")  # the Django checks already ran
    prefix = f"tideline-tests-{uuid.uuid4().hex}:"
    changed = {
        "broker_url": REDIS_BROKER,
        # Keys of their own: another test run on this Redis must not take this run's messages.
        "broker_transport_options": {"global_keyprefix": prefix},
        "task_always_eager": False,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": False,
    }
    previous = {key: celery_app.conf.get(key) for key in changed}
    celery_app.conf.update(changed)
    ran: list[str] = []

    def record(sender=None, **kwargs):
        ran.append(sender.name)

    celery_signals.task_postrun.connect(record, weak=False)
    try:
        with start_worker(celery_app, perform_ping_check=False, pool="solo", shutdown_timeout=30):
            task = make_task(alice, title="Via Celery")  # commit → relay_outbox.delay()
            published = fake_dapr.wait_for_events(2, timeout=15)
            wait_until(lambda: "events.tasks.relay_outbox" in ran, timeout=5)
    finally:
        celery_signals.task_postrun.disconnect(record)
        celery_app.conf.update(previous)
        drop_connection_pools(celery_app)
        client = redis.Redis.from_url(REDIS_BROKER)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()

    assert sorted(e["id"] for e in published) == sorted(str(r.id) for r in rows())
    assert {e["data"]["task_id"] for e in published} == {task.pk}
    wait_until(
        lambda: not OutboxEvent.objects.exclude(state=OutboxState.DELIVERED).exists(),
        timeout=5,
    )
