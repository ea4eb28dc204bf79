"""The sidecar's callbacks are never anonymous, and what can never succeed is never retried.

Without Dapr the callback routes do not exist (the embedded transport calls the handlers
in-process). With Dapr, production requires ``APP_API_TOKEN`` (``check --deploy`` fails
without it, tideline.E012). Through the HTTP callback, an event that can never be processed is
answered DROP and a job trigger that can never run is answered 200 (done): daprd redelivers
anything else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from events.checks import check_app_token
from events.cloudevents import (
    HASHED_ID_PREFIX,
    MAX_JSON_DEPTH,
    build_envelope,
    storable_event_id,
)
from events.dispatch import RetryLater, Unprocessable
from events.models import OutboxEvent
from events.routing import JobCallback
from notifications.models import ReminderDelivery
from tests.events.helpers import TEST_CONSUMER, add_routes
from tests.factories import make_task

TOKEN = "app-token"
REMIND_AT = dt.datetime(2030, 1, 1, 9, tzinfo=dt.UTC)
CE = "application/cloudevents+json"


@pytest.fixture
def callbacks(settings) -> Client:
    """Dapr on with a token; a client that sends it, as the sidecar does."""
    settings.DAPR_ENABLED = True
    settings.APP_API_TOKEN = TOKEN
    return Client(headers={"dapr-api-token": TOKEN})


@pytest.fixture
def envelope(alice) -> dict:
    make_task(alice, title="Hardened")
    return build_envelope(OutboxEvent.objects.get(topic="task-events"))


def deliver(client: Client, body: dict | str | bytes, topic: str = "task-events"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    response = client.post(f"/events/{topic}", data=data, content_type=CE)
    assert response.status_code == 200, response.content
    return response.json()["status"]


# --- never anonymous -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/job/reminder-task-1"),
        ("post", "/job/check-due-tasks"),
        ("post", "/events/task-events"),
        ("get", "/dapr/subscribe"),
    ],
)
def test_without_dapr_the_callbacks_are_not_routed(client, alice, settings, method, path):
    settings.EVENT_CONSUMERS = ["all"]
    task = make_task(alice, title="Mine", remind_at=REMIND_AT)
    deliveries = list(ReminderDelivery.objects.values_list("pk", "state"))
    body = json.dumps({"task_id": task.pk, "remind_at": "2030-01-01T09:00:00Z"})

    if method == "get":
        response = client.get(path)
    else:
        response = client.post(path, data=body, content_type="application/json")

    assert response.status_code == 404
    assert mail.outbox == []
    assert list(ReminderDelivery.objects.values_list("pk", "state")) == deliveries


def test_the_same_routes_exist_with_dapr(callbacks, db):
    assert callbacks.get("/dapr/subscribe").status_code == 200


@pytest.mark.parametrize("path", ["/job/reminder-task-1", "/job/check-due-tasks"])
@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x"])
def test_with_dapr_a_job_without_the_right_token_is_401(callbacks, settings, path, token):
    settings.EVENT_CONSUMERS = ["all"]
    headers = {} if token is None else {"dapr-api-token": token}

    response = Client(headers=headers).post(path, data="{}", content_type="application/json")

    assert response.status_code == 401
    assert mail.outbox == []


def test_check_deploy_refuses_dapr_without_an_app_token(settings):
    settings.DAPR_ENABLED, settings.DEBUG, settings.APP_API_TOKEN = True, False, ""

    assert [error.id for error in check_app_token()] == ["tideline.E012"]
    with pytest.raises(SystemCheckError, match=r"tideline\.E012"):
        call_command("check", deploy=True, fail_level="ERROR")


def load_the_wsgi_app(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """Import the server's entry point as gunicorn does, in a fresh process."""
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "todo_project.settings",
        "SECRET_KEY": "x" * 50,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "tasks.example.com",
        "TIDELINE_VAR_DIR": str(tmp_path),
        "TIDELINE_BACKGROUND": "false",
        "DAPR_ENABLED": "true",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import todo_project.wsgi"],
        cwd=Path(__file__).resolve().parents[2],  # the repository root
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_server_with_dapr_and_no_app_token_refuses_to_start(tmp_path):
    refused = load_the_wsgi_app(tmp_path)
    assert refused.returncode != 0
    assert "ImproperlyConfigured: tideline.E012" in refused.stderr

    started = load_the_wsgi_app(tmp_path, APP_API_TOKEN=TOKEN)
    assert started.returncode == 0, started.stderr


@pytest.mark.parametrize(
    "fine", [{"APP_API_TOKEN": TOKEN}, {"DEBUG": True}, {"DAPR_ENABLED": False}]
)
def test_a_token_debug_or_no_dapr_passes_the_check(settings, fine):
    settings.DAPR_ENABLED, settings.DEBUG, settings.APP_API_TOKEN = True, False, ""
    for name, value in fine.items():
        setattr(settings, name, value)

    assert check_app_token() == []


# --- events that can never succeed: DROP -----------------------------------------------


def test_a_body_over_the_size_limit_is_dropped(callbacks, settings, consumer, envelope):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    envelope["data"]["task_data"]["description"] = "x" * 2000

    assert deliver(callbacks, envelope) == "DROP"
    assert consumer.calls == 0


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_a_body_nested_too_deep_is_dropped(callbacks, consumer, envelope, depth):
    body = json.dumps(envelope)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"

    assert deliver(callbacks, body) == "DROP"
    assert consumer.calls == 0


@pytest.mark.parametrize(
    "number", ["Infinity", "-Infinity", "NaN", "1e400"], ids=["inf", "-inf", "nan", "1e400"]
)
def test_a_body_with_a_number_json_cannot_hold_is_dropped(callbacks, consumer, envelope, number):
    body = json.dumps(envelope)[:-1] + f', "extra": {number}}}'

    assert deliver(callbacks, body) == "DROP"
    assert consumer.calls == 0


@pytest.mark.parametrize("bad_id", ["a\u0000b", "a\ud800b"], ids=["nul", "lone surrogate"])
def test_an_id_no_column_can_store_is_dropped(callbacks, consumer, envelope, bad_id):
    envelope["id"] = bad_id

    assert deliver(callbacks, json.dumps(envelope)) == "DROP"  # escaped: \u0000, \ud800
    assert consumer.calls == 0


def test_a_long_id_is_stored_hashed_and_still_deduplicated(callbacks, consumer, envelope):
    envelope["id"] = "x" * 1000

    assert deliver(callbacks, envelope) == "SUCCESS"
    assert deliver(callbacks, envelope) == "SUCCESS"

    [effect] = consumer.effects()
    assert effect["event_id"] == storable_event_id("x" * 1000)
    assert effect["event_id"].startswith(HASHED_ID_PREFIX) and len(effect["event_id"]) <= 255
    assert storable_event_id("x" * 255) == "x" * 255  # one that fits is kept


def test_a_task_id_out_of_the_database_range_is_dropped(callbacks, consumer, envelope):
    envelope["data"]["task_id"] = 2**63

    assert deliver(callbacks, envelope) == "DROP"
    assert consumer.calls == 0


def test_a_reminder_for_an_impossible_date_is_dropped(callbacks, settings, alice):
    settings.EVENT_CONSUMERS = ["all"]
    task = make_task(alice, title="No such day")
    reminder = {
        "specversion": "1.0",
        "id": "reminder-2030-02-30",
        "source": "web",
        "type": "com.tideline.reminder.due.v1",
        "data": {"task_id": task.pk, "user_id": alice.pk, "remind_at": "2030-02-30T09:00:00Z"},
    }

    assert deliver(callbacks, reminder, topic="task-reminders") == "DROP"
    assert mail.outbox == []


# --- jobs that can never run: done (200), never retried ---------------------------------


@pytest.fixture
def job(monkeypatch):
    """``test-job-*``: records its data, or raises ``raises`` when set."""
    calls: list[dict] = []
    behaviour: dict[str, BaseException | None] = {"raises": None}

    def handler(name: str, data: dict) -> None:
        if behaviour["raises"] is not None:
            raise behaviour["raises"]
        calls.append(data)

    add_routes(
        monkeypatch,
        jobs=(JobCallback(f"{TEST_CONSUMER}.job", r"test-job-.*", handler, TEST_CONSUMER),),
    )
    return calls, behaviour


def fire(client: Client, name: str, body: str | bytes):
    return client.post(f"/job/{name}", data=body, content_type="application/json")


@pytest.mark.parametrize(
    "body",
    ['{"n": Infinity}', '{"n": NaN}', '{"n": 1e400}', "[" * 1000 + "]" * 1000, b"\xff", "{"],
    ids=["inf", "nan", "1e400", "deep", "not utf-8", "not json"],
)
def test_a_job_body_that_can_never_run_is_done(callbacks, job, body):
    calls, _ = job

    response = fire(callbacks, "test-job-1", body)

    assert response.status_code == 200
    assert calls == []


def test_a_job_body_over_the_size_limit_is_done(callbacks, settings, job):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    assert fire(callbacks, "test-job-1", json.dumps({"n": "x" * 200})).status_code == 200
    assert job[0] == []


@pytest.mark.parametrize(
    ("error", "status"),
    [(Unprocessable("never"), 200), (KeyError("a bug"), 200), (RetryLater("later"), 503)],
    ids=["unprocessable", "crash", "transient"],
)
def test_only_a_transient_job_failure_is_retried(callbacks, job, error, status):
    job[1]["raises"] = error

    assert fire(callbacks, "test-job-1", "{}").status_code == status


@pytest.mark.parametrize("task_id", [2**63, -(2**63) - 1, 10**30])
def test_a_reminder_job_for_an_impossible_task_id_is_done(callbacks, settings, db, task_id):
    settings.EVENT_CONSUMERS = ["all"]
    body = json.dumps({"task_id": task_id, "remind_at": "2030-01-01T09:00:00Z"})

    # 404 (no such job name) is as final for daprd as 200.
    assert fire(callbacks, f"reminder-task-{task_id}", body).status_code in (200, 404)
    assert mail.outbox == []
