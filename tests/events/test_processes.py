"""One scheduler per running app: never started by tests, ``migrate`` or management commands;
``relay_events`` and ``events_status`` work as commands."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from events import background
from events.background import BackgroundWorker, start_background_worker
from events.models import OutboxEvent, OutboxState
from tests.factories import make_task

WORKER_THREAD = "tideline-worker"


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WORKER_THREAD and t.is_alive()]


def call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_with_background_off_the_entry_point_starts_nothing(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    worker = BackgroundWorker()
    monkeypatch.setattr(background, "worker", worker)
    start_hooks = []
    monkeypatch.setattr(background, "run_start_hooks", lambda: start_hooks.append("ran"))
    settings.TIDELINE_BACKGROUND = False
    settings.CELERY_BROKER_URL = ""  # without a broker, only the switch keeps the worker off

    start_background_worker()

    assert not worker.running
    assert worker_threads() == []
    assert start_hooks == []


def test_importing_the_wsgi_entry_point_starts_nothing_when_disabled():
    module = importlib.import_module("todo_project.wsgi")
    importlib.reload(module)  # run the entry point's start-up code again, here

    assert module.application is not None
    assert not background.worker.running
    assert worker_threads() == []


def test_the_asgi_entry_point_starts_nothing_either():
    module = importlib.import_module("todo_project.asgi")
    importlib.reload(module)
    assert not background.worker.running
    assert worker_threads() == []


def test_a_broker_means_no_background_worker_in_a_process_serving_no_role(
    settings, tmp_path, monkeypatch
):
    settings.VAR_DIR = tmp_path
    worker = BackgroundWorker()
    monkeypatch.setattr(background, "worker", worker)
    settings.TIDELINE_BACKGROUND = True
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    settings.EVENT_CONSUMERS = ["none"]  # web: Celery relays, nothing role-bound to run

    start_background_worker()

    assert not worker.running


def test_the_server_entry_point_starts_exactly_one_worker(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    worker = BackgroundWorker()
    monkeypatch.setattr(background, "worker", worker)
    settings.TIDELINE_BACKGROUND = True
    try:
        start_background_worker()
        start_background_worker()  # a second call does not start a second thread
        assert worker.running
        assert len(worker_threads()) == 1
    finally:
        worker.stop(timeout=10)
    assert worker_threads() == []


def test_relay_events_once_delivers_and_reports(alice):
    make_task(alice)
    make_task(alice)

    out = call("relay_events", "--once")

    assert out.strip() == "delivered=4 retried=0 failed=0"
    assert set(OutboxEvent.objects.values_list("state", flat=True)) == {OutboxState.DELIVERED}
    assert call("relay_events", "--once").strip() == "delivered=0 retried=0 failed=0"
    assert worker_threads() == []


def test_events_status_reports_backlog_age_and_failures(alice):
    assert json.loads(call("events_status", "--json")) == {
        "pending": 0,
        "retrying": 0,
        "failed": 0,
        "delivered_retained": 0,
        "consumers_retrying": 0,
        "dead_letters": 0,
        "oldest_pending_age_seconds": 0,
        "by_topic": {},
    }
    make_task(alice)
    make_task(alice)
    parked = OutboxEvent.objects.filter(topic="task-updates").order_by("seq").first()
    OutboxEvent.objects.filter(pk=parked.pk).update(
        state=OutboxState.FAILED, attempts=1, last_error="POST ... -> 400: topic is rejected"
    )
    retrying = OutboxEvent.objects.filter(topic="task-events").order_by("seq").first()
    OutboxEvent.objects.filter(pk=retrying.pk).update(
        attempts=2, last_error="-> 500", created_at=timezone.now() - dt.timedelta(seconds=90)
    )

    status = json.loads(call("events_status", "--json"))

    assert status["pending"] == 3
    assert status["retrying"] == 1
    assert status["failed"] == 1
    assert status["delivered_retained"] == 0
    assert 90 <= status["oldest_pending_age_seconds"] < 120
    assert status["by_topic"] == {"task-events": 2, "task-updates": 1}

    text = call("events_status")
    assert "pending: 3" in text
    assert "failed: 1" in text
    assert "oldest_pending_age_seconds:" in text
    assert f"failed {parked.id} task.created task-updates: POST ... -> 400" in text
    assert worker_threads() == []


def test_management_commands_in_a_real_process_never_start_the_worker(tmp_path):
    """``migrate``, ``shell`` and ``relay_events`` with the real settings (background on)."""
    root = Path(__file__).resolve().parents[2]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "todo_project.settings",
        "SECRET_KEY": "tests-only",
        "TIDELINE_VAR_DIR": str(tmp_path / "var"),  # its own SQLite database, no DATABASE_URL
        "LOG_LEVEL": "INFO",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        output = done.stdout + done.stderr
        assert "background worker started" not in output
        return output

    manage("migrate", "-v0")
    shell = manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from tasks import services; "
        "from events import background; "
        "services.task_create(user=User.objects.create(username='u'), title='t'); "
        "print('running', background.worker.running)",
    )
    assert "running False" in shell
    assert "delivered=2 retried=0 failed=0" in manage("relay_events", "--once")
    status = json.loads(manage("events_status", "--json").strip().splitlines()[-1])
    assert status["pending"] == 0
    assert status["delivered_retained"] == 2
    assert not (tmp_path / "var" / "scheduler.lock").exists(), "a scheduler ran"


@pytest.mark.parametrize("command", ["check", "showmigrations"])
def test_other_commands_start_nothing(db, command):
    call_command(command, stdout=StringIO())
    assert not background.worker.running
    assert worker_threads() == []
