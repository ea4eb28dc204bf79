"""Fixtures for the events integration tests: a stand-in Dapr sidecar, a test consumer.

Every test here runs in an SMTP-free world with the events settings pinned to the embedded
defaults; a test that wants Dapr asks for ``fake_dapr`` (publishing only) or ``sidecar``
(which also talks to the app through pytest-django's ``live_server``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from events import background
from events.background import BackgroundWorker, SchedulerLock
from events.cloudevents import CloudEvent
from events.models import StateEntry
from events.registry import EventType
from events.routing import Consumer, JobCallback
from tests.events.helpers import TEST_CONSUMER, add_routes, start_sidecar
from tests.support.fake_dapr import FakeDaprSidecar

EFFECT_PREFIX = "test-effect:"


@pytest.fixture(autouse=True)
def events_world(settings, monkeypatch):
    """The embedded defaults, whatever the environment says, and no SMTP anywhere."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_BROKER_URL = ""
    settings.TIDELINE_BACKGROUND = False
    settings.DAPR_ENABLED = False
    settings.DAPR_HTTP_HOST = "127.0.0.1"
    settings.DAPR_HTTP_PORT = 3500
    settings.DAPR_API_TOKEN = ""
    settings.APP_API_TOKEN = ""
    settings.DAPR_APP_ID = "backend"
    settings.DAPR_PUBSUB_NAME = "pubsub-kafka"
    settings.DAPR_STATESTORE_NAME = "statestore-postgres"
    settings.DAPR_TIMEOUT_SECONDS = 5.0
    settings.DAPR_BULK_PUBLISH = True
    settings.DAPR_JOBS_API_PREFIX = "v1.0"  # the stand-in sidecars claim daprd 1.18 to match
    # Only the tests' own role: the app's consumers (notifications, recurrence) have their
    # own suites, and their effects would blur what these tests count.
    settings.EVENT_CONSUMERS = [TEST_CONSUMER]
    add_routes(monkeypatch, role=TEST_CONSUMER)  # a known role, so `manage.py check` passes
    settings.EVENT_TOPICS = {
        "task_events": "task-events",
        "task_updates": "task-updates",
        "task_recurrence": "task-recurrence",
        "task_reminders": "task-reminders",
    }
    settings.EVENT_DEAD_LETTER_TOPIC = "tideline-dead-letter"
    settings.OUTBOX_BATCH_SIZE = 100
    settings.OUTBOX_LEASE_SECONDS = 30
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 1.0
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 60.0
    return settings


@pytest.fixture
def dapr_callbacks(events_world):
    """The sidecar's routes served (``DAPR_ENABLED``) with no token required, for tests that
    call them themselves instead of through a stand-in sidecar."""
    events_world.DAPR_ENABLED = True
    return events_world


@pytest.fixture
def fake_dapr(events_world) -> Iterator[FakeDaprSidecar]:
    """A stand-in sidecar on a free loopback port, for publishing and state (no app)."""
    sidecar = start_sidecar(events_world)
    try:
        yield sidecar
    finally:
        sidecar.stop()
        assert not sidecar.errors, sidecar.errors


@pytest.fixture
def sidecar(events_world, live_server) -> Iterator[FakeDaprSidecar]:
    """A stand-in sidecar that also calls the app (``live_server``) over real HTTP."""
    fake = start_sidecar(events_world, app_url=live_server.url)
    try:
        yield fake
    finally:
        fake.stop()
        assert not fake.errors, fake.errors


class RecordingConsumer:
    """A consumer whose handler records each effect as a row (rolled back with the handler).

    ``fail_with`` makes the handler raise (after writing its effect with ``fail_after_effect``;
    only for the next ``fail_times`` calls when that is set); ``sleep`` makes it wait inside
    its transaction.
    """

    name = TEST_CONSUMER

    def __init__(self) -> None:
        self.fail_with: BaseException | None = None
        self.fail_after_effect = False
        self.fail_times: int | None = None
        self.sleep = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def _failure(self) -> BaseException | None:
        with self._lock:
            if self.fail_with is None or self.fail_times == 0:
                return None
            if self.fail_times is not None:
                self.fail_times -= 1
            return self.fail_with

    def handle(self, event: CloudEvent) -> None:
        with self._lock:
            self.calls += 1
            call_number = self.calls
        if self.sleep:
            time.sleep(self.sleep)
        failure = self._failure()
        if failure is not None and not self.fail_after_effect:
            raise failure
        StateEntry.objects.create(
            key=f"{EFFECT_PREFIX}{uuid.uuid4().hex}",
            etag="effect",
            value={
                "call": call_number,
                "event_id": event.id,
                "type": event.type,
                "event_type": str(event.event_type),
                "topic": event.topic,
                "data": event.data,
            },
        )
        if failure is not None:
            raise failure

    def effects(self, event_id: str | None = None) -> list[dict]:
        """The effects that were committed, in the order the handler ran."""
        values = [e.value for e in StateEntry.objects.filter(key__startswith=EFFECT_PREFIX)]
        values.sort(key=lambda v: v["call"])
        return [v for v in values if event_id is None or v["event_id"] == event_id]


@pytest.fixture
def consumer(monkeypatch) -> RecordingConsumer:
    """A transactional test consumer of every event on task-events, task-recurrence and
    task-reminders (one routing-table consumer per topic, all recording here)."""
    recorder = RecordingConsumer()
    add_routes(
        monkeypatch,
        consumers={
            topic: (
                Consumer(
                    name=f"{TEST_CONSUMER}.{topic}",
                    handler=recorder.handle,
                    event_types=tuple(EventType),
                    role=TEST_CONSUMER,
                ),
            )
            for topic in ("task_events", "task_recurrence", "task_reminders")
        },
    )
    return recorder


@pytest.fixture
def job_calls(monkeypatch) -> list[tuple[str, dict]]:
    """A job callback for ``test-job-.*`` that records (name, data)."""
    calls: list[tuple[str, dict]] = []

    def record_job(name: str, data: dict) -> None:
        calls.append((name, data))

    add_routes(
        monkeypatch,
        jobs=(
            JobCallback(
                name=f"{TEST_CONSUMER}.job",
                pattern=r"test-job-.*",
                handler=record_job,
                role=TEST_CONSUMER,
            ),
        ),
    )
    return calls


@pytest.fixture
def background_worker(settings, tmp_path, monkeypatch):
    """The embedded worker thread, started by the test (never by the app under tests).

    Another "process" holds the scheduler lock, so this worker only delivers what commits
    hand it (``kick``): no periodic sweep can stand in for a missed kick.
    """
    settings.VAR_DIR = tmp_path  # its scheduler lock, away from a developer's server
    other_process = SchedulerLock(str(tmp_path / "scheduler.lock"))
    assert other_process.acquire()
    worker = BackgroundWorker()
    monkeypatch.setattr(background, "worker", worker)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=10)
        other_process._file.close()
        assert not worker.running
        assert not worker.is_scheduler
