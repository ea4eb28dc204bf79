"""The jobs client against the Jobs API as daprd serves it (dapr-protocol-notes.md, dapr/dapr
``pkg/api/http/jobs.go`` and ``pkg/api/universal/jobs.go``):

- ``DELETE /v1.0/jobs/<name>`` answers 204 whether or not the job exists (the Scheduler deletes
  its keys, a missing key included); a 404 comes from a path with no Jobs API behind it (a
  wrong ``DAPR_JOBS_API_PREFIX`` falls through to service invocation), so it is an error.
- Job names are refused as daprd refuses them (``pkg/messaging/method.ValidateName``): any
  of / \\ # ? or a control character, or exactly "." or "..".
"""

from __future__ import annotations

import pytest

from events.dapr import DaprError
from events.jobs_client import DaprJobs, DatabaseJobs, JobError, validate_job_name
from events.models import ScheduledJob
from tests.events.helpers import start_sidecar


def test_deleting_a_job_that_does_not_exist_is_done_as_daprd_answers_it(fake_dapr):
    DaprJobs().delete("reminder-task-404")  # daprd: 204, nothing to delete

    assert fake_dapr.job_log == [("delete", "reminder-task-404", None)]


def test_deleting_a_scheduled_job_removes_it(fake_dapr):
    jobs = DaprJobs()
    jobs.schedule("reminder-task-1", data={"task_id": 1}, due_time=None, schedule="@every 1h")

    jobs.delete("reminder-task-1")

    assert "reminder-task-1" not in fake_dapr.jobs


def test_a_404_from_a_wrong_jobs_prefix_is_an_error_never_done(settings):
    settings.DAPR_JOBS_API_PREFIX = "v1.0"  # stable from 1.18 only
    sidecar = start_sidecar(settings, runtime_version="1.16")  # serves /v1.0-alpha1/jobs only
    try:
        with pytest.raises(DaprError) as raised:
            DaprJobs().delete("reminder-task-1")
    finally:
        sidecar.stop()

    assert raised.value.status == 404
    assert raised.value.error_code == "ERR_DIRECT_INVOKE"  # service invocation, not the job
    assert sidecar.job_log == []


REFUSED_NAMES = {
    "empty": "",
    "slash": "bad/name",
    "backslash": "bad\\name",
    "hash": "bad#name",
    "question mark": "bad?name",
    "NUL": "bad\x00name",
    "newline": "bad\nname",
    "carriage return": "bad\rname",
    "tab": "bad\tname",
    "another control character": "bad\x1bname",
    "DEL": "bad\x7fname",
    "dot": ".",
    "dot dot": "..",
}


@pytest.mark.parametrize("name", REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
def test_a_name_daprd_refuses_is_refused_before_any_call(fake_dapr, name):
    with pytest.raises(JobError, match="Invalid job name"):
        DaprJobs().schedule(name, data={}, schedule="@daily")
    with pytest.raises(JobError, match="Invalid job name"):
        DaprJobs().delete(name)

    assert fake_dapr.job_log == []


@pytest.mark.parametrize("name", REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
def test_the_embedded_scheduler_refuses_the_same_names(db, name):
    with pytest.raises(JobError, match="Invalid job name"):
        DatabaseJobs().schedule(name, data={}, schedule="@daily")

    assert not ScheduledJob.objects.exists()


@pytest.mark.parametrize(
    "name",
    [
        "reminder-task-1",
        "check-due-tasks",
        "my||job@name",
        "pipe|name",
        "Ünïcode name",
        "a.b",
        "...",
    ],
)
def test_names_daprd_accepts_are_accepted(db, name):
    """daprd 1.16.15, 1.17.11 and 1.18.2 accept "|" and "@" (dapr/dapr#10120)."""
    assert validate_job_name(name) == name

    DatabaseJobs().schedule(name, data={}, schedule="@daily")

    assert ScheduledJob.objects.filter(name=name).exists()
