"""One runtime, chosen once from settings, supplies every mode-dependent piece; celery beat and
the server processes split one schedule table, and role-bound work runs only in processes
serving a role, in every mode (events/runtime.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from events import background, runtime, tasks
from events.background import BackgroundWorker, start_background_worker
from events.cloudevents import build_envelope, parse_envelope
from events.dispatch import consumer_named
from events.failures import FailureKind, record_failure
from events.jobs_client import DaprJobs, DatabaseJobs, jobs_client
from events.models import ConsumerFailure, OutboxEvent, StateEntry
from events.relay import request_relay
from events.state import DaprStateStore, DatabaseStateStore, state_store
from events.transports import DaprTransport, InProcessTransport, get_transport
from notifications import services as notification_services
from tasks.models import Task
from tests.events.helpers import wait_until
from tests.factories import make_task
from todo_project.celery import RUN_PERIODIC, beat_schedule

ROOT = Path(django_settings.BASE_DIR)
DOCS = ROOT / "docs" / "events.md"
BROKER = "redis://127.0.0.1:6379/15"  # never contacted: the relay trigger is recorded
EVERY_ENTRY = [
    "sweep-outbox",
    "retry-consumer-failures",
    "send-webhooks",
    "prune-outbox",
    "prune-live-updates",
    "prune-webhook-deliveries",
    "purge-expired-state",
    "purge-idempotency-keys",
    "fire-embedded-jobs",
]
# The sidecar keeps jobs and state itself; held events are the app's, in every mode.
WITH_DAPR = [
    "sweep-outbox",
    "retry-consumer-failures",
    "send-webhooks",
    "prune-outbox",
    "prune-live-updates",
    "prune-webhook-deliveries",
    "purge-idempotency-keys",
]
ROLE_BOUND = ["retry-consumer-failures", "send-webhooks", "fire-embedded-jobs"]
SHARED = [name for name in EVERY_ENTRY if name not in ROLE_BOUND]
SHARED_WITH_DAPR = [name for name in WITH_DAPR if name not in ROLE_BOUND]

MODES = {
    "embedded default": dict(dapr=False, broker="", pieces=(InProcessTransport, DatabaseJobs)),
    "celery": dict(dapr=False, broker=BROKER, pieces=(InProcessTransport, DatabaseJobs)),
    "dapr": dict(dapr=True, broker="", pieces=(DaprTransport, DaprJobs)),
    "dapr and celery": dict(dapr=True, broker=BROKER, pieces=(DaprTransport, DaprJobs)),
}


def switch_to(settings, mode: str) -> dict:
    settings.DAPR_ENABLED = MODES[mode]["dapr"]
    settings.CELERY_BROKER_URL = MODES[mode]["broker"]
    return MODES[mode]


def expire_and_keep_state() -> None:
    """One state entry whose TTL ran out, one that lives on."""
    now = timezone.now()
    StateEntry.objects.create(key="test:expired", value=1, etag="e", expires_at=now)
    StateEntry.objects.create(
        key="test:alive", value=2, etag="a", expires_at=now + dt.timedelta(hours=1)
    )


# --- the pieces of each mode ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_each_combination_of_settings_gets_the_pieces_of_its_mode(settings, mode):
    expected = switch_to(settings, mode)
    transport, jobs = expected["pieces"]
    state = DaprStateStore if expected["dapr"] else DatabaseStateStore

    chosen = runtime.runtime()

    assert (chosen.dapr, chosen.celery) == (expected["dapr"], bool(expected["broker"]))
    assert type(chosen.transport) is type(get_transport()) is transport
    assert type(chosen.jobs) is type(jobs_client()) is jobs
    assert type(chosen.state) is type(state_store()) is state
    assert chosen.relay_thread is not bool(expected["broker"])
    names = [entry.name for entry in chosen.schedule]
    assert names == (WITH_DAPR if expected["dapr"] else EVERY_ENTRY)


@pytest.mark.parametrize("mode", MODES)
def test_after_commit_the_relay_trigger_of_the_mode_is_asked(
    alice, settings, monkeypatch, django_capture_on_commit_callbacks, mode
):
    expected = switch_to(settings, mode)
    asked: list[str] = []
    monkeypatch.setattr(
        tasks, "relay_outbox", SimpleNamespace(delay=lambda: asked.append("celery"))
    )
    monkeypatch.setattr(background, "worker", SimpleNamespace(kick=lambda: asked.append("thread")))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        make_task(alice, title="Relay me")

    assert request_relay in callbacks
    assert asked == ["celery" if expected["broker"] else "thread"]


def test_the_runtime_is_chosen_once_and_again_when_a_test_changes_the_settings(settings):
    first = runtime.runtime()
    assert runtime.runtime() is first
    assert not first.dapr

    settings.DAPR_ENABLED = True

    assert runtime.runtime() is not first
    assert runtime.runtime().dapr
    assert isinstance(get_transport(), DaprTransport)


# --- one schedule table ----------------------------------------------------------------------


# Per mode: what celery beat runs, and what the scheduler-lock holder of a server process runs
# when it serves a role (EVENT_CONSUMERS=notifications) and when it serves none.
WHO_RUNS_WHAT = {
    "embedded default": dict(
        beat=[],
        role=EVERY_ENTRY,
        no_role=SHARED,
    ),
    "celery": dict(
        beat=SHARED,
        role=ROLE_BOUND,
        no_role=[],
    ),
    "dapr": dict(beat=[], role=WITH_DAPR, no_role=SHARED_WITH_DAPR),
    "dapr and celery": dict(
        beat=SHARED_WITH_DAPR, role=["retry-consumer-failures", "send-webhooks"], no_role=[]
    ),
}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_says_what_beat_and_the_server_processes_run(db, settings, tmp_path, mode):
    expected = switch_to(settings, mode)
    settings.VAR_DIR = tmp_path
    chosen = runtime.runtime()

    ran = {}
    for process, roles in (("role", ["notifications"]), ("no_role", ["none"])):
        settings.EVENT_CONSUMERS = roles
        ran[process] = BackgroundWorker().run_due_work(now=0.0)  # at first, all is due
        assert chosen.server_thread(serves_a_role=process == "role") is bool(
            not expected["broker"] or ran[process]
        )

    assert {"beat": list(beat_schedule()), **ran} == WHO_RUNS_WHAT[mode]
    assert [entry.name for entry in chosen.beat_schedule] == WHO_RUNS_WHAT[mode]["beat"]


@pytest.mark.parametrize("dapr", [False, True], ids=["without dapr", "with dapr"])
def test_with_a_broker_beat_and_the_role_processes_split_the_table(db, settings, dapr, tmp_path):
    switch_to(settings, "dapr and celery" if dapr else "celery")
    settings.RELAY_SWEEP_SECONDS = 7.0
    settings.VAR_DIR = tmp_path
    schedule = runtime.runtime().schedule

    beat = {name: entry["schedule"] for name, entry in beat_schedule().items()}
    in_role_processes = BackgroundWorker().run_due_work(now=0.0)

    # Every entry of the mode runs in exactly one place; the role-bound ones never in beat.
    assert sorted([*beat, *in_role_processes]) == sorted(entry.name for entry in schedule)
    assert not set(beat) & set(in_role_processes)
    assert [e.name for e in schedule if e.role_bound] == in_role_processes
    assert beat == {entry.name: entry.seconds() for entry in schedule if not entry.role_bound}
    assert beat["sweep-outbox"] == 7.0
    assert ("purge-expired-state" in beat) is not dapr
    assert {entry["task"] for entry in beat_schedule().values()} == {RUN_PERIODIC}
    assert [entry["args"] for entry in beat_schedule().values()] == [(name,) for name in beat]


def test_a_broken_split_is_caught(db, settings, tmp_path, monkeypatch):
    """The split checks fail when a role-bound entry loses its mark (it would go to beat)."""
    unmarked = tuple(dataclasses.replace(entry, role_bound=False) for entry in runtime.SCHEDULE)
    monkeypatch.setattr(runtime, "SCHEDULE", unmarked)
    switch_to(settings, "celery")
    settings.VAR_DIR = tmp_path

    assert "retry-consumer-failures" in beat_schedule()
    assert list(beat_schedule()) != WHO_RUNS_WHAT["celery"]["beat"]
    assert BackgroundWorker().run_due_work(now=0.0) == []


def test_the_embedded_scheduler_runs_due_work_and_waits_out_each_interval(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.RELAY_SWEEP_SECONDS = 5.0
    settings.WEBHOOK_SWEEP_SECONDS = 5.0
    expire_and_keep_state()
    worker = BackgroundWorker()

    assert worker.run_due_work(now=1000.0) == EVERY_ENTRY
    assert list(StateEntry.objects.values_list("key", flat=True)) == ["test:alive"]
    assert worker.run_due_work(now=1000.5) == []
    assert worker.run_due_work(now=1001.0) == ["fire-embedded-jobs"]
    assert worker.run_due_work(now=1005.0) == [
        "sweep-outbox",
        "retry-consumer-failures",
        "send-webhooks",
        "fire-embedded-jobs",
    ]
    assert worker.run_due_work(now=4600.0) == EVERY_ENTRY


def test_a_failing_entry_does_not_stop_the_others(db, settings, tmp_path, monkeypatch, caplog):
    settings.VAR_DIR = tmp_path
    expire_and_keep_state()

    def broken():
        raise RuntimeError("the outbox sweep broke")

    monkeypatch.setattr("events.relay.relay_pending", broken)

    assert BackgroundWorker().run_due_work(now=0.0) == EVERY_ENTRY
    assert list(StateEntry.objects.values_list("key", flat=True)) == ["test:alive"]
    assert "periodic work failed name=sweep-outbox" in caplog.text


def test_the_celery_task_runs_a_beat_entry_by_name_and_refuses_role_bound_work(db, settings):
    switch_to(settings, "celery")
    expire_and_keep_state()

    tasks.run_periodic.apply(args=["purge-expired-state"]).get()

    assert list(StateEntry.objects.values_list("key", flat=True)) == ["test:alive"]
    for role_bound in ROLE_BOUND:  # a worker serves no role: these run in the role processes
        with pytest.raises(LookupError, match=f"no periodic work named '{role_bound}'"):
            tasks.run_periodic.apply(args=[role_bound]).get()

    settings.DAPR_ENABLED = True  # the sidecar's state expires by itself: not this mode's work
    with pytest.raises(LookupError, match="no periodic work named 'purge-expired-state'"):
        tasks.run_periodic.apply(args=["purge-expired-state"]).get()


@pytest.mark.parametrize("dapr", ["false", "true"])
def test_celery_beat_reads_the_table_and_a_worker_registers_its_task(settings, tmp_path, dapr):
    """As ``celery -A todo_project beat`` and ``worker`` do: import the app, read its
    configuration (before Django's apps are loaded), then import the task modules."""
    script = (
        "import json, django\n"
        "from todo_project.celery import app\n"
        "schedule = app.conf.beat_schedule\n"
        "django.setup()\n"
        "app.loader.import_default_modules()\n"
        "print(json.dumps({'schedule': schedule, 'tasks': sorted(app.tasks)}))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "todo_project.settings",
        "SECRET_KEY": "tests-only",
        "TIDELINE_VAR_DIR": str(tmp_path / "var"),
        "DAPR_ENABLED": dapr,
        "CELERY_BROKER_URL": BROKER,
        "RELAY_SWEEP_SECONDS": "7",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    switch_to(settings, "dapr and celery" if dapr == "true" else "celery")
    settings.RELAY_SWEEP_SECONDS = 7.0
    expected = {
        name: {**entry, "args": list(entry["args"])} for name, entry in beat_schedule().items()
    }
    assert seen["schedule"] == expected
    assert "sweep-outbox" in seen["schedule"]
    assert not set(seen["schedule"]) & set(ROLE_BOUND)
    assert RUN_PERIODIC in seen["tasks"]
    assert "events.tasks.relay_outbox" in seen["tasks"]


# --- the server processes with a broker --------------------------------------------------------


class RecordedThread:
    """Stands in for ``threading.Thread`` in ``events.background``: records what would start."""

    started: list[str] = []

    def __init__(self, *, target, name: str, daemon: bool) -> None:
        self.name = name

    def start(self) -> None:
        RecordedThread.started.append(self.name)

    def is_alive(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("mode", "roles", "threads"),
    [
        ("celery", "notifications", ["tideline-start-hooks", "tideline-worker"]),
        ("celery", "recurrence", ["tideline-worker"]),
        ("celery", "none", []),
        ("dapr and celery", "notifications", ["tideline-start-hooks", "tideline-worker"]),
        ("dapr and celery", "none", []),
        ("embedded default", "none", ["tideline-worker"]),  # it relays
        ("dapr", "notifications", ["tideline-start-hooks", "tideline-worker"]),
    ],
)
def test_the_entry_point_starts_the_threads_the_mode_and_the_roles_need(
    settings, tmp_path, monkeypatch, mode, roles, threads
):
    switch_to(settings, mode)
    settings.TIDELINE_BACKGROUND = True
    settings.VAR_DIR = tmp_path
    settings.EVENT_CONSUMERS = [roles]
    monkeypatch.setattr(background, "worker", BackgroundWorker())
    monkeypatch.setattr(background.threading, "Thread", RecordedThread)
    monkeypatch.setattr(RecordedThread, "started", [])

    start_background_worker()

    assert RecordedThread.started == threads
    # The start-up work of the roles runs in every mode: the sweep job with notifications.
    expected_start_up = ["register-sweep-job"] if roles == "notifications" else []
    assert [work.name for work in background.start_up_work()] == expected_start_up


def hold_a_reminder_job_sync_failure(alice) -> Task:
    """A failure of notifications.reminder-job-sync on the task.created of a new task, due for
    a retry; the task."""
    task = make_task(alice, title="Held")
    event = parse_envelope(build_envelope(OutboxEvent.objects.get(topic="task-events")))
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    record_failure(
        consumer_named("notifications.reminder-job-sync"),
        event,
        "task-events",
        RuntimeError("the sidecar was down"),
        FailureKind.TRANSIENT,
        now=an_hour_ago,
    )
    return task


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_a_notifications_process_retries_the_held_failures_of_its_role(
    alice, settings, tmp_path, monkeypatch
):
    settings.VAR_DIR = tmp_path
    worker = BackgroundWorker()
    monkeypatch.setattr(background, "worker", worker)  # not started: commits kick nothing
    task = hold_a_reminder_job_sync_failure(alice)
    assert ConsumerFailure.objects.get().attempts == 1
    switch_to(settings, "celery")
    settings.TIDELINE_BACKGROUND = True
    settings.EVENT_CONSUMERS = ["notifications"]
    monkeypatch.setattr(background, "run_start_hooks", lambda: None)  # tested above
    retried: list[int] = []
    real_reminder_sync = notification_services.reminder_sync

    def spy(task_id: int) -> None:
        real_reminder_sync(task_id)
        retried.append(task_id)

    monkeypatch.setattr(notification_services, "reminder_sync", spy)

    start_background_worker()
    try:
        # Wait without touching the database (the worker thread is using it).
        wait_until(lambda: retried, timeout=5)
        was_scheduler = worker.is_scheduler
    finally:
        worker.stop(timeout=10)

    assert was_scheduler
    assert retried == [task.pk]
    assert not ConsumerFailure.objects.exists()  # handled on the retry: the row is done


def test_with_a_broker_a_process_serving_no_role_starts_no_thread_at_all(
    db, alice, settings, tmp_path, monkeypatch
):
    settings.VAR_DIR = tmp_path
    worker = BackgroundWorker()
    monkeypatch.setattr(background, "worker", worker)
    hold_a_reminder_job_sync_failure(alice)
    switch_to(settings, "celery")
    settings.TIDELINE_BACKGROUND = True
    settings.EVENT_CONSUMERS = ["none"]
    before = set(threading.enumerate())

    start_background_worker()

    assert not worker.running
    assert set(threading.enumerate()) - before == set()
    assert worker.run_due_work(now=0.0) == []  # not even when asked
    assert ConsumerFailure.objects.get().attempts == 1  # left for the notifications process


# --- the tables are checked at start -----------------------------------------------------------


def test_manage_py_check_fails_on_a_target_that_moved_or_an_unknown_role(db, monkeypatch):
    moved = runtime.Periodic("moved", "events.relay.no_such_function", every=60, purpose="x")
    bad_interval = runtime.Periodic("slow", "events.relay.prune", every="NO_SUCH", purpose="x")
    nowhere = runtime.StartUp("nowhere", "events.relay.prune", role="notifcations", purpose="x")
    monkeypatch.setattr(runtime, "SCHEDULE", (*runtime.SCHEDULE, moved, bad_interval))
    monkeypatch.setattr(runtime, "START_UP", (*runtime.START_UP, nowhere))

    errors = runtime.check_runtime_tables()

    assert [(e.id, e.msg.split(":")[0]) for e in errors] == [
        ("tideline.E010", "moved"),
        ("tideline.E010", "slow"),
        ("tideline.E011", "nowhere"),
    ]
    with pytest.raises(SystemCheckError, match=r"tideline\.E010"):
        call_command("check")


def test_the_shipped_tables_pass_the_check():
    assert runtime.check_runtime_tables() == []


# --- the documentation -----------------------------------------------------------------------


def render_schedule() -> str:
    """The schedule and start-up tables as docs/events.md shows them."""

    def every(entry: runtime.Periodic) -> str:
        return f"`{entry.every}`" if isinstance(entry.every, str) else f"{entry.every} s"

    lines = [
        "| periodic work | every | runs | where | what it does | function |",
        "|---|---|---|---|---|---|",
        *(
            f"| `{e.name}` | {every(e)} | {'without Dapr' if e.without_dapr else 'always'} "
            f"| {'role-bound' if e.role_bound else 'shared'} | {e.purpose} | `{e.target}` |"
            for e in runtime.SCHEDULE
        ),
        "",
        "| start-up work | role | what it does | function |",
        "|---|---|---|---|",
        *(f"| `{w.name}` | {w.role} | {w.purpose} | `{w.target}` |" for w in runtime.START_UP),
    ]
    return "\n".join(lines) + "\n"


def test_docs_events_md_lists_the_schedule_table_of_the_code():
    table = render_schedule()
    assert table in DOCS.read_text(), f"docs/events.md: replace the schedule table with\n{table}"
