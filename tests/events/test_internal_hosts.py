"""daprd (``Host: 127.0.0.1:<port>``) and the kubelet (``Host: <pod IP>:<port>``) reach the
internal routes, while everything else still answers 400 to a Host outside ``ALLOWED_HOSTS``
(todo_project/hosts.py). The settings are production's: ``ALLOWED_HOSTS=tasks.example.com``.
Behind the ingress controller, ``TIDELINE_BEHIND_TLS_PROXY`` trusts its ``X-Forwarded-Proto``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from events import views
from events.cloudevents import build_envelope
from events.models import OutboxEvent
from tests.factories import make_task

PUBLIC_HOST = "tasks.example.com"
POD_IP = "10.244.1.7:8000"
LOOPBACK = "127.0.0.1:8000"
ADDRESS_HOSTS = [
    POD_IP,
    "10.244.1.7",
    LOOPBACK,
    "localhost:8000",
    "[::1]:8000",
    "[fd00:10:244:1::7]:8000",
]
APP_TOKEN = "app-token"
MIDDLEWARE = "todo_project.hosts.InternalHostsMiddleware"


@pytest.fixture(autouse=True)
def production_hosts(settings, monkeypatch):
    settings.ALLOWED_HOSTS = [PUBLIC_HOST]
    settings.DAPR_ENABLED = True  # the sidecar's routes exist only with Dapr
    monkeypatch.setattr(views, "sidecar_unready", lambda: "")  # /readyz: no sidecar here
    settings.APP_API_TOKEN = APP_TOKEN


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


@pytest.fixture
def envelope(alice) -> dict:
    make_task(alice, title="Delivered by address")
    return build_envelope(OutboxEvent.objects.get(topic="task-events"))


@pytest.mark.parametrize("host", ADDRESS_HOSTS)
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/dapr/subscribe"])
def test_the_probes_and_discovery_answer_an_address_host(client, db, path, host):
    assert client.get(path, HTTP_HOST=host).status_code == 200


def test_the_sidecar_delivers_an_event_by_loopback(client, consumer, envelope):
    response = client.post(
        "/events/task-events",
        data=json.dumps(envelope),
        content_type="application/cloudevents+json",
        HTTP_HOST=LOOPBACK,
        HTTP_DAPR_API_TOKEN=APP_TOKEN,
    )

    assert (response.status_code, response.json()) == (200, {"status": "SUCCESS"})
    assert [e["event_id"] for e in consumer.effects()] == [envelope["id"]]


def test_the_sidecar_triggers_a_job_by_loopback(client, db, job_calls):
    response = client.post(
        "/job/test-job-1",
        data=json.dumps({"n": 1}),
        content_type="application/json",
        HTTP_HOST="[::1]:8000",
        HTTP_DAPR_API_TOKEN=APP_TOKEN,
    )

    assert response.status_code == 200
    assert job_calls == [("test-job-1", {"n": 1})]


def test_an_address_host_still_needs_the_app_token(client, consumer, envelope):
    response = client.post(
        "/events/task-events",
        data=json.dumps(envelope),
        content_type="application/cloudevents+json",
        HTTP_HOST=LOOPBACK,
    )

    assert response.status_code == 401
    assert consumer.effects() == []


PUBLIC_PATHS = ["/", "/api/tasks/", "/api/schema/", "/admin/", "/accounts/login/"]


@pytest.mark.parametrize("host", [POD_IP, LOOPBACK, "[fd00:10:244:1::7]:8000"])
@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_pages_and_the_api_refuse_an_address_host(client, db, path, host):
    assert client.get(path, HTTP_HOST=host).status_code == 400


@pytest.mark.parametrize(
    "host",
    [
        "evil.com",
        "10.244.1.7.evil.com",
        "localhost.evil.com",
        "evil.localhost",
        "[fd00::7",
        "999.244.1.7:8000",
        "10.244.1.7:8000@evil.com",
    ],
)
@pytest.mark.parametrize("path", ["/healthz", "/dapr/subscribe", "/", "/api/tasks/"])
def test_any_other_host_is_refused_everywhere(client, db, path, host):
    assert client.get(path, HTTP_HOST=host).status_code == 400


def test_the_public_host_still_reaches_everything(client, db):
    assert client.get("/healthz", HTTP_HOST=PUBLIC_HOST).status_code == 200
    assert client.get("/api/tasks/", HTTP_HOST=PUBLIC_HOST).status_code == 401  # not 400


def test_without_the_middleware_the_internal_routes_refuse_the_sidecar_and_the_kubelet(
    client, db, settings
):
    """The issue's report, and the check above failing on a broken copy of the settings."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]

    assert client.get("/healthz", HTTP_HOST=POD_IP).status_code == 400
    assert client.get("/dapr/subscribe", HTTP_HOST=LOOPBACK).status_code == 400


def test_the_middleware_comes_before_anything_that_reads_the_host(settings):
    assert settings.MIDDLEWARE[0] == MIDDLEWARE


# --- behind a proxy that ends TLS ------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
PROXY_VARIABLES = ("TIDELINE_BEHIND_TLS_PROXY", "CSRF_TRUSTED_ORIGINS")


def proxy_settings(**environment: str) -> list:
    """[SECURE_PROXY_SSL_HEADER, CSRF_TRUSTED_ORIGINS] as a fresh process reads them."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps([settings.SECURE_PROXY_SSL_HEADER, settings.CSRF_TRUSTED_ORIGINS]))"
    )
    inherited = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "todo_project.settings",
        "DEBUG": "false",
        "SECRET_KEY": "x" * 50,
        **environment,
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_behind_a_tls_proxy_its_x_forwarded_proto_is_trusted():
    assert proxy_settings(
        TIDELINE_BEHIND_TLS_PROXY="true",
        CSRF_TRUSTED_ORIGINS="https://tasks.example.com,https://www.example.com",
    ) == [
        ["HTTP_X_FORWARDED_PROTO", "https"],
        ["https://tasks.example.com", "https://www.example.com"],
    ]


def test_by_default_no_forwarded_header_is_trusted():
    assert proxy_settings() == [None, []]
