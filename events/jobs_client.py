"""Scheduling jobs: the Dapr Jobs API, or the embedded database-backed scheduler.

Either way the job comes back as a call of the handler registered for its name (see
``events.jobs``): by the sidecar through ``POST /job/<name>``, or in-process by the one
scheduler of the embedded default.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import dapr
from .jobs import find_job_handler
from .models import ScheduledJob
from .payloads import json_value
from .runtime import runtime

logger = logging.getLogger(__name__)

#: What daprd refuses in a job name (dapr/dapr ``pkg/messaging/method.ValidateName``, which
#: the Scheduler applies to job names since 1.16.15, 1.17.11 and 1.18.2): / \ # ? and every
#: control character, NUL included, and the exact names "." and "..". "|" and "@" are allowed
#: (earlier releases refused them too, and anything else outside DNS-1123, with a 400 or 500).
_FORBIDDEN_IN_NAMES = re.compile(r"[/\\#?\x00-\x1f\x7f]")
_PATH_SEGMENTS = frozenset({".", ".."})
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_NAMED_SCHEDULES = {"@hourly": 3600, "@daily": 86400, "@midnight": 86400, "@weekly": 604800}
#: Like Dapr's default job failure policy: a failing trigger is retried 3 times, 1 s apart.
EMBEDDED_JOB_RETRIES = 3
#: The first daprd release serving the Jobs API at ``/v1.0/jobs``; earlier ones only at
#: ``/v1.0-alpha1/jobs`` (a call to ``/v1.0/jobs`` falls through to service invocation: 404).
STABLE_JOBS_API_SINCE = (1, 18)
_RELEASE = re.compile(r"v?(\d+)\.(\d+)")
#: The Jobs API prefix of each sidecar (by address) this process has asked.
_detected_prefixes: dict[str, str] = {}


class JobError(Exception):
    pass


def validate_job_name(name: str) -> str:
    """The name as daprd accepts it, else ``JobError`` (checked before any call, embedded too)."""
    if not name or name in _PATH_SEGMENTS or _FORBIDDEN_IN_NAMES.search(name):
        raise JobError(
            f"Invalid job name {name!r}: not empty, '.' or '..', and no / \\ # ? or control "
            "characters."
        )
    return name


def every_seconds(schedule: str) -> int:
    """Seconds between runs of ``@every 1m30s`` or ``@hourly``-style schedules."""
    if schedule in _NAMED_SCHEDULES:
        return _NAMED_SCHEDULES[schedule]
    if not schedule.startswith("@every "):
        raise JobError(f"Unsupported schedule {schedule!r} (use '@every <duration>').")
    text = schedule.removeprefix("@every ").strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise JobError(f"Unsupported duration {text!r} (e.g. 30s, 1m, 1h30m).")
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return max(1, int(sum(float(n) * factor[u] for n, u in parts)))


def prefix_for_runtime(version: str) -> str:
    """The Jobs API prefix a daprd reporting ``version`` serves.

    A version that is not a release number ("edge", what daprd reports when built from
    unreleased code, or nothing) gets the newest prefix, with a warning: such builds are newer
    than every release, and ``DAPR_JOBS_API_PREFIX`` can still force the other one.
    """
    match = _RELEASE.match(version)
    if match is None:
        logger.warning(
            "sidecar runtimeVersion %r is not a release number; using the Jobs API at /v1.0 "
            "(set DAPR_JOBS_API_PREFIX=v1.0-alpha1 for a sidecar older than 1.18)",
            version,
        )
        return "v1.0"
    release = (int(match.group(1)), int(match.group(2)))
    return "v1.0" if release >= STABLE_JOBS_API_SINCE else "v1.0-alpha1"


def jobs_api_prefix() -> str:
    """``DAPR_JOBS_API_PREFIX`` when set, else the prefix the sidecar's ``runtimeVersion``
    calls for, asked on the first Jobs call and kept for the process. While the sidecar is not
    up that call raises ``DaprError`` (as the Jobs call would) and the next one asks again."""
    if settings.DAPR_JOBS_API_PREFIX:
        return settings.DAPR_JOBS_API_PREFIX
    sidecar = dapr.base_url()
    if sidecar not in _detected_prefixes:
        version = dapr.runtime_version()
        _detected_prefixes[sidecar] = prefix_for_runtime(version)
        logger.info(
            "sidecar runtimeVersion=%s: Jobs API at /%s", version, _detected_prefixes[sidecar]
        )
    return _detected_prefixes[sidecar]


class JobsClient(Protocol):
    def schedule(
        self,
        name: str,
        *,
        data: dict[str, Any],
        due_time: dt.datetime | None = None,
        schedule: str | None = None,
    ) -> None: ...

    def delete(self, name: str) -> None: ...


class DaprJobs:
    """``POST/DELETE /v1.0/jobs/<name>`` (``/v1.0-alpha1`` on 1.14-1.17 sidecars)."""

    def _path(self, name: str) -> str:
        validate_job_name(name)  # before any call to the sidecar
        return f"/{jobs_api_prefix()}/jobs/{name}"

    def schedule(self, name, *, data, due_time=None, schedule=None) -> None:
        body: dict[str, Any] = {"data": data, "overwrite": True}
        if due_time is not None:
            body["dueTime"] = json_value(due_time)
        if schedule is not None:
            body["schedule"] = schedule
        dapr.request("POST", self._path(name), json=body)

    def delete(self, name: str) -> None:
        """daprd answers 204 whether or not the job exists; any other answer raises, a 404
        above all: it comes from a path the sidecar has no Jobs API on (a wrong forced
        ``DAPR_JOBS_API_PREFIX`` falls through to service invocation), never from the job."""
        dapr.request("DELETE", self._path(name))


class DatabaseJobs:
    """The embedded default: jobs are rows; ``fire_due`` is run by the one scheduler."""

    def schedule(self, name, *, data, due_time=None, schedule=None) -> None:
        validate_job_name(name)
        interval = every_seconds(schedule) if schedule else None
        due = due_time or timezone.now() + dt.timedelta(seconds=interval or 0)
        ScheduledJob.objects.update_or_create(
            name=name,
            defaults={
                "due_at": due,
                "interval_seconds": interval,
                "data": data,
                "attempts": 0,
                "last_error": "",
            },
        )

    def delete(self, name: str) -> None:
        ScheduledJob.objects.filter(name=name).delete()

    def fire_due(self, *, now: dt.datetime | None = None, limit: int = 100) -> int:
        """Call the handlers of due jobs; each due run is claimed by one scheduler only."""
        now = now or timezone.now()
        fired = 0
        for job in ScheduledJob.objects.filter(due_at__lte=now).order_by("due_at")[:limit]:
            if not self._claim(job, now):
                continue
            fired += 1
            self._run(job, now)
        return fired

    def _claim(self, job: ScheduledJob, now: dt.datetime) -> bool:
        current = ScheduledJob.objects.filter(name=job.name, due_at=job.due_at)
        if job.interval_seconds:
            step = dt.timedelta(seconds=job.interval_seconds)
            # The next run after now: runs missed while no scheduler ran are skipped, not
            # replayed back to back (``max(due + step, now)`` made it due again at once).
            next_due = job.due_at + ((now - job.due_at) // step + 1) * step
            return current.update(due_at=next_due) == 1
        return current.delete()[0] == 1

    def _run(self, job: ScheduledJob, now: dt.datetime) -> None:
        handler = find_job_handler(job.name)
        if handler is None:
            logger.warning("no handler for job name=%s; dropped", job.name)
            return
        try:
            handler(job.name, job.data)
            logger.info("job ran name=%s", job.name)
        except Exception as exc:
            logger.exception("job failed name=%s attempt=%s", job.name, job.attempts + 1)
            if not job.interval_seconds and job.attempts + 1 <= EMBEDDED_JOB_RETRIES:
                with transaction.atomic():
                    ScheduledJob.objects.get_or_create(
                        name=job.name,
                        defaults={
                            "due_at": now + dt.timedelta(seconds=1),
                            "data": job.data,
                            "attempts": job.attempts + 1,
                            "last_error": str(exc)[:2000],
                        },
                    )


def jobs_client() -> JobsClient:
    """The jobs client of this process's runtime (``events.runtime``)."""
    return runtime().jobs


def fire_due_jobs() -> int:
    """The embedded scheduler's ``fire-embedded-jobs`` (``events.runtime.SCHEDULE``)."""
    return DatabaseJobs().fire_due()
