"""``/readyz`` in Dapr mode: not ready while the sidecar cannot take the app's calls.

The view asks daprd's ``GET /v1.0/healthz/outbound`` (204 once the components are loaded;
500 ``ERR_OUTBOUND_HEALTH_NOT_READY`` before) with a timeout well inside the kubelet's probe
timeout, and the manifests never make the sidecar's app health check depend on ``/readyz``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from events.views import SIDECAR_PROBE_TIMEOUT_SECONDS
from tests.events.helpers import start_sidecar

READY = {"status": "ok", "database": "ok"}
K8S_BASE = Path(__file__).resolve().parents[2] / "k8s" / "base"


def test_ready_while_the_sidecar_answers(fake_dapr, client, db):
    response = client.get("/readyz")

    assert (response.status_code, response.json()) == (200, READY)


def test_not_ready_while_the_sidecar_is_unreachable(settings, client, db):
    sidecar = start_sidecar(settings)
    sidecar.stop()

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("unavailable", "ok")
    assert body["sidecar"].startswith("not ready: sidecar unreachable")

    sidecar.start()  # the same port: ready again
    try:
        assert client.get("/readyz").status_code == 200
    finally:
        sidecar.stop()


def test_not_ready_until_the_sidecar_has_loaded_its_components(fake_dapr, client, db):
    fake_dapr.ready = False

    response = client.get("/readyz")

    assert response.status_code == 503
    assert "-> 500: dapr outbound is not ready" in response.json()["sidecar"]
    fake_dapr.ready = True
    assert client.get("/readyz").status_code == 200


@pytest.fixture
def silent_sidecar(settings) -> Iterator[socket.socket]:
    """A port that accepts connections and never answers (a hung sidecar)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        settings.DAPR_ENABLED = True
        settings.DAPR_HTTP_HOST, settings.DAPR_HTTP_PORT = server.getsockname()
        yield server


def test_a_hung_sidecar_is_not_ready_within_the_probe_timeout(silent_sidecar, client, db):
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert "timed out" in response.json()["sidecar"]
    assert SIDECAR_PROBE_TIMEOUT_SECONDS <= elapsed < probe_timeouts()[0]


def test_the_embedded_mode_asks_no_sidecar(silent_sidecar, settings, client, db):
    settings.DAPR_ENABLED = False

    assert client.get("/readyz").status_code == 200


# --- the manifests: the probe's timeout, and no wait of the sidecar on /readyz -----------


def deployments(base: Path = K8S_BASE) -> list[dict]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(base.glob("deployment-*.yaml"))]
    return [doc for doc in docs if doc and doc.get("kind") == "Deployment"]


def probe_timeouts(docs: list[dict] | None = None) -> list[int]:
    """Every app container's readinessProbe timeout on /readyz (Kubernetes' default is 1 s)."""
    return [
        container["readinessProbe"].get("timeoutSeconds", 1)
        for doc in docs or deployments()
        for container in doc["spec"]["template"]["spec"]["containers"]
        if container.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz"
    ]


def readiness_problems(docs: list[dict]) -> list[str]:
    problems = []
    for timeout in probe_timeouts(docs):
        if timeout <= SIDECAR_PROBE_TIMEOUT_SECONDS:
            problems.append(f"readinessProbe timeout {timeout}s: not above the sidecar probe's")
    for doc in docs:
        annotations = doc["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("dapr.io/app-health-check-path", "/healthz") == "/readyz":
            problems.append(f"{doc['metadata']['name']}: the sidecar would wait on /readyz")
    return problems


def test_the_manifests_give_the_sidecar_probe_time_and_never_wait_on_readyz():
    docs = deployments()

    assert len(probe_timeouts(docs)) == len(docs) == 3
    assert readiness_problems(docs) == []


def test_a_short_probe_timeout_or_a_sidecar_waiting_on_readyz_is_rejected():
    docs = deployments()
    docs[0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["timeoutSeconds"] = 1
    docs[1]["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-health-check-path"] = (
        "/readyz"
    )

    assert len(readiness_problems(docs)) == 2
