"""One runtime, chosen once from settings, supplies every mode-dependent piece; celery beat and
the embedded scheduler run the same schedule table (events/runtime.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from events import background, runtime, tasks
from events.background import BackgroundWorker
from events.jobs_client import DaprJobs, DatabaseJobs, jobs_client
from events.models import ScheduledJob, StateEntry
from events.relay import request_relay
from events.state import DaprStateStore, DatabaseStateStore, state_store
from events.transports import DaprTransport, InProcessTransport, get_transport
from tests.factories import make_task
from todo_project.celery import RUN_PERIODIC, beat_schedule

ROOT = Path(django_settings.BASE_DIR)
DOCS = ROOT / "docs" / "events.md"
BROKER = "redis://127.0.0.1:6379/15"  # never contacted: the relay trigger is recorded
EVERY_ENTRY = [
    "sweep-outbox",
    "retry-consumer-failures",
    "prune-outbox",
    "purge-expired-state",
    "fire-embedded-jobs",
]
# The sidecar keeps jobs and state itself; held events are the app's, in every mode.
WITH_DAPR = ["sweep-outbox", "retry-consumer-failures", "prune-outbox"]

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
    assert chosen.embedded_worker is not bool(expected["broker"])
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


@pytest.mark.parametrize("dapr", [False, True], ids=["without dapr", "with dapr"])
def test_celery_beat_and_the_embedded_scheduler_run_the_same_table(db, settings, dapr, tmp_path):
    settings.DAPR_ENABLED = dapr
    settings.RELAY_SWEEP_SECONDS = 7.0
    settings.VAR_DIR = tmp_path

    beat = {name: entry["schedule"] for name, entry in beat_schedule().items()}
    embedded = BackgroundWorker().run_due_work(now=0.0)  # at first, everything is due

    assert list(beat) == embedded == (WITH_DAPR if dapr else EVERY_ENTRY)
    assert beat == {entry.name: entry.seconds() for entry in runtime.runtime().schedule}
    assert beat["sweep-outbox"] == beat["retry-consumer-failures"] == 7.0
    assert ("purge-expired-state" in beat) is not dapr
    assert {entry["task"] for entry in beat_schedule().values()} == {RUN_PERIODIC}
    assert [entry["args"] for entry in beat_schedule().values()] == [(name,) for name in beat]


def test_the_embedded_scheduler_runs_due_work_and_waits_out_each_interval(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.RELAY_SWEEP_SECONDS = 5.0
    expire_and_keep_state()
    worker = BackgroundWorker()

    assert worker.run_due_work(now=1000.0) == EVERY_ENTRY
    assert list(StateEntry.objects.values_list("key", flat=True)) == ["test:alive"]
    assert worker.run_due_work(now=1000.5) == []
    assert worker.run_due_work(now=1001.0) == ["fire-embedded-jobs"]
    assert worker.run_due_work(now=1005.0) == [
        "sweep-outbox",
        "retry-consumer-failures",
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


def test_the_celery_task_runs_a_schedule_entry_by_name(db, settings):
    expire_and_keep_state()
    ScheduledJob.objects.create(
        name="unknown-job-for-this-test", due_at=timezone.now(), data={"type": "test"}
    )

    tasks.run_periodic.apply(args=["purge-expired-state"]).get()
    tasks.run_periodic.apply(args=["fire-embedded-jobs"]).get()

    assert list(StateEntry.objects.values_list("key", flat=True)) == ["test:alive"]
    assert not ScheduledJob.objects.exists()  # fired (no handler for it: dropped)

    settings.DAPR_ENABLED = True  # the sidecar fires jobs: not this mode's work
    with pytest.raises(LookupError, match="no periodic work named 'fire-embedded-jobs'"):
        tasks.run_periodic.apply(args=["fire-embedded-jobs"]).get()


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

    settings.DAPR_ENABLED = dapr == "true"
    settings.RELAY_SWEEP_SECONDS = 7.0
    expected = {
        name: {**entry, "args": list(entry["args"])} for name, entry in beat_schedule().items()
    }
    assert seen["schedule"] == expected
    assert RUN_PERIODIC in seen["tasks"]
    assert "events.tasks.relay_outbox" in seen["tasks"]


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
        "| periodic work | every | runs | what it does | function |",
        "|---|---|---|---|---|",
        *(
            f"| `{e.name}` | {every(e)} | {'without Dapr' if e.without_dapr else 'always'} "
            f"| {e.purpose} | `{e.target}` |"
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
