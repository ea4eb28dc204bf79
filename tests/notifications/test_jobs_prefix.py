"""A reminder's job reaches the Jobs API of whichever daprd runs beside the app, with
``DAPR_JOBS_API_PREFIX`` left empty (the default): end to end over real HTTP, the app learns
the prefix from the sidecar's ``runtimeVersion`` (tests/events/test_jobs_prefix.py has the
details)."""

from __future__ import annotations

import pytest

from events import dapr as dapr_client
from events import jobs_client
from tests.notifications.helpers import iso, reminder_job, soon


@pytest.fixture
def jobs_paths(monkeypatch) -> list[str]:
    """The paths of the app's Jobs API calls, whatever thread makes them."""
    paths: list[str] = []
    real_request = dapr_client.request

    def request(method: str, path: str, **kwargs):
        if "/jobs/" in path:
            paths.append(path)
        return real_request(method, path, **kwargs)

    monkeypatch.setattr(dapr_client, "request", request)
    monkeypatch.setattr(jobs_client, "_detected_prefixes", {})  # a fresh process
    return paths


@pytest.mark.parametrize(("version", "prefix"), [("1.16", "v1.0-alpha1"), ("1.18", "v1.0")])
def test_a_reminder_is_scheduled_on_the_sidecars_own_jobs_api(
    api, dapr, settings, jobs_paths, version, prefix
):
    dapr.sidecar.runtime_version = version
    settings.DAPR_JOBS_API_PREFIX = ""
    remind_at = soon(hours=1)
    response = api.post(
        "/api/tasks/",
        {"title": "Pay the rent", "due_date": iso(soon(hours=2)), "remind_at": iso(remind_at)},
        format="json",
    )
    assert response.status_code == 201
    name = reminder_job(response.json()["id"])

    dapr.pump()

    assert dapr.job(name)["dueTime"] == iso(remind_at)
    assert jobs_paths == [f"/{prefix}/jobs/{name}"]
