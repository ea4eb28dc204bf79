"""The sidecar's callbacks on the real job names and topics answer a body that can never
be processed as final: 200 (DROP or done) in JSON, never a 5xx (a retry) or Django's HTML
400. test_callbacks_hardening.py checks each case on a test route; these pin the routes
the app actually serves."""

from __future__ import annotations

import json

import pytest
from django.test import Client

TOKEN = "app-token"
UNPROCESSABLE = {
    "inf": '{"task_id": Infinity}',
    "nan": '{"task_id": NaN}',
    "1e400": '{"task_id": 1e400, "remind_at": "2030-01-01T09:00:00Z"}',
    "deep": '{"data": ' + "[" * 1000 + "]" * 1000 + "}",
    "not utf-8": b"\xff",
    "not json": "{",
    "empty": "",
    "not an object": "[]",
}
ROUTES = [
    "/job/check-due-tasks",
    "/job/reminder-task-1",
    "/events/task-events",
    "/events/task-updates",
    "/events/task-recurrence",
    "/events/task-reminders",
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def sidecar(settings) -> Client:
    """Dapr on, every consumer in this process; a client that sends the app token."""
    settings.DAPR_ENABLED = True
    settings.APP_API_TOKEN = TOKEN
    settings.EVENT_CONSUMERS = ["all"]
    return Client(headers={"dapr-api-token": TOKEN})


def assert_final(response) -> None:
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"].startswith("application/json")
    if response.wsgi_request.path.startswith("/events/"):
        assert response.json()["status"] == "DROP"


@pytest.mark.parametrize("body", UNPROCESSABLE.values(), ids=UNPROCESSABLE.keys())
@pytest.mark.parametrize("path", ROUTES)
def test_a_body_that_can_never_be_processed_is_answered_as_final(sidecar, path, body):
    content_type = "application/cloudevents+json" if path.startswith("/events/") else None

    response = sidecar.post(path, data=body, content_type=content_type or "application/json")

    assert_final(response)


@pytest.mark.parametrize("path", ROUTES)
def test_a_body_over_the_size_limit_is_answered_as_final(sidecar, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    event = {"specversion": "1.0", "id": "big", "source": "web", "type": "t", "data": {}}
    event["data"]["padding"] = "x" * 5000

    response = sidecar.post(path, data=json.dumps(event), content_type="application/json")

    assert_final(response)
