"""The Jobs API prefix follows the sidecar (issue 10): daprd serves ``/v1.0-alpha1/jobs`` up to
1.17 and ``/v1.0/jobs`` from 1.18 (there ``/v1.0/jobs`` on an older sidecar falls through to
service invocation: 404). With ``DAPR_JOBS_API_PREFIX`` empty (the default) the app reads the
sidecar's ``runtimeVersion`` from ``GET /v1.0/metadata`` on its first Jobs call and keeps the
answer; a set ``DAPR_JOBS_API_PREFIX`` forces the prefix.
"""

from __future__ import annotations

import logging

import pytest

from events import dapr, jobs_client
from events.dapr import DaprError
from events.jobs_client import DaprJobs, prefix_for_runtime
from tests.events.helpers import start_sidecar
from tests.support.fake_dapr import RUNTIME_VERSIONS


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """No sidecar asked yet, as in a new process."""
    monkeypatch.setattr(jobs_client, "_detected_prefixes", {})


@pytest.fixture
def sidecar_calls(monkeypatch) -> list[tuple[str, str]]:
    """(method, path) of every call the app makes to its sidecar."""
    calls: list[tuple[str, str]] = []
    real_request = dapr.request

    def request(method: str, path: str, **kwargs):
        calls.append((method, path))
        return real_request(method, path, **kwargs)

    monkeypatch.setattr(dapr, "request", request)
    return calls


def auto_sidecar(settings, version: str, **kwargs):
    sidecar = start_sidecar(settings, runtime_version=version, **kwargs)
    settings.DAPR_JOBS_API_PREFIX = ""  # the default: follow the sidecar
    return sidecar


@pytest.mark.parametrize(
    ("version", "prefix"),
    [
        ("1.14.4", "v1.0-alpha1"),
        ("1.16.0", "v1.0-alpha1"),
        ("1.17.9", "v1.0-alpha1"),
        ("1.18.0-rc.1", "v1.0"),
        ("1.18.3", "v1.0"),
        ("1.19.0", "v1.0"),
        ("v1.16.2", "v1.0-alpha1"),
        ("2.0.0", "v1.0"),
    ],
)
def test_the_prefix_of_each_release(version, prefix):
    assert prefix_for_runtime(version) == prefix


@pytest.mark.parametrize("version", ["edge", "", "unknown", "1"])
def test_a_build_of_unreleased_code_gets_the_newest_prefix_with_a_warning(version, caplog):
    with caplog.at_level(logging.WARNING, logger="events.jobs_client"):
        assert prefix_for_runtime(version) == "v1.0"

    assert "DAPR_JOBS_API_PREFIX=v1.0-alpha1" in caplog.text


@pytest.mark.parametrize("version", RUNTIME_VERSIONS)
def test_a_job_is_scheduled_and_deleted_on_every_supported_sidecar(settings, version):
    sidecar = auto_sidecar(settings, version)
    try:
        DaprJobs().schedule("test-job-1", data={"n": 1}, schedule="@every 1h")
        assert "test-job-1" in sidecar.jobs
        DaprJobs().delete("test-job-1")
    finally:
        sidecar.stop()

    assert sidecar.jobs == {}
    assert [op for op, _, _ in sidecar.job_log] == ["schedule", "delete"]


@pytest.mark.parametrize(("version", "prefix"), [("1.16", "v1.0-alpha1"), ("1.18", "v1.0")])
def test_the_metadata_is_asked_once_then_every_call_uses_its_prefix(
    settings, sidecar_calls, version, prefix
):
    sidecar = auto_sidecar(settings, version, api_token="dapr-token")
    try:
        for n in range(3):
            DaprJobs().schedule(f"test-job-{n}", data={"n": n}, schedule="@daily")
        DaprJobs().delete("test-job-0")
    finally:
        sidecar.stop()

    assert sidecar_calls == [
        ("GET", "/v1.0/metadata"),
        ("POST", f"/{prefix}/jobs/test-job-0"),
        ("POST", f"/{prefix}/jobs/test-job-1"),
        ("POST", f"/{prefix}/jobs/test-job-2"),
        ("DELETE", f"/{prefix}/jobs/test-job-0"),
    ]


def test_a_sidecar_not_up_yet_is_asked_again_on_the_next_call(settings, sidecar_calls):
    sidecar = auto_sidecar(settings, "1.16")
    sidecar.stop()

    with pytest.raises(DaprError, match="sidecar unreachable"):
        DaprJobs().schedule("test-job-1", data={}, schedule="@daily")
    assert jobs_client._detected_prefixes == {}  # nothing guessed

    sidecar.start()  # the same port
    try:
        DaprJobs().schedule("test-job-1", data={}, schedule="@daily")
    finally:
        sidecar.stop()

    assert sidecar_calls == [
        ("GET", "/v1.0/metadata"),
        ("GET", "/v1.0/metadata"),
        ("POST", "/v1.0-alpha1/jobs/test-job-1"),
    ]
    assert "test-job-1" in sidecar.jobs


def test_a_forced_prefix_asks_no_metadata(settings, sidecar_calls):
    sidecar = auto_sidecar(settings, "1.18")
    settings.DAPR_JOBS_API_PREFIX = "v1.0-alpha1"  # 1.18 serves both
    try:
        DaprJobs().schedule("test-job-1", data={}, schedule="@daily")
    finally:
        sidecar.stop()

    assert sidecar_calls == [("POST", "/v1.0-alpha1/jobs/test-job-1")]


def test_a_wrong_forced_prefix_is_a_404_error_never_done(settings):
    """The check above can fail: ``/v1.0/jobs`` on a 1.16 sidecar is no Jobs API."""
    sidecar = auto_sidecar(settings, "1.16")
    settings.DAPR_JOBS_API_PREFIX = "v1.0"
    try:
        with pytest.raises(DaprError) as raised:
            DaprJobs().schedule("test-job-1", data={}, schedule="@daily")
    finally:
        sidecar.stop()

    assert (raised.value.status, raised.value.error_code) == (404, "ERR_DIRECT_INVOKE")
    assert sidecar.jobs == {}


def test_an_invalid_job_name_is_refused_before_asking_the_sidecar(settings, sidecar_calls):
    sidecar = auto_sidecar(settings, "1.18")
    try:
        with pytest.raises(jobs_client.JobError):
            DaprJobs().schedule("bad/name", data={}, schedule="@daily")
    finally:
        sidecar.stop()

    assert sidecar_calls == []
