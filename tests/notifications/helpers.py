"""Small helpers shared by the reminder tests."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.utils import timezone

from notifications.models import ReminderDelivery
from tasks.models import Task

SITE_URL = "https://tideline.example.com"
DAPR_API_TOKEN = "app-to-sidecar-secret"
APP_API_TOKEN = "sidecar-to-app-secret"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def soon(seconds: int = 0, *, minutes: int = 0, hours: int = 0, days: int = 0) -> dt.datetime:
    """A UTC instant relative to now, to the second (as a client would type it)."""
    delta = dt.timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
    return (timezone.now() + delta).replace(microsecond=0)


def iso(value: dt.datetime) -> str:
    """RFC 3339 in UTC with a Z, as the API accepts it and the Jobs API receives it."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def fresh(task: Task) -> Task:
    return Task.objects.get(pk=task.pk)


def deliveries(task_or_id) -> list[ReminderDelivery]:
    task_id = getattr(task_or_id, "pk", task_or_id)
    return list(ReminderDelivery.objects.filter(task_id=task_id).order_by("remind_at", "pk"))


def delivery(task: Task) -> ReminderDelivery:
    """The delivery of the task's current reminder time."""
    return ReminderDelivery.objects.get(task_id=task.pk, remind_at=fresh(task).remind_at)


def reminder_job(task_or_id) -> str:
    return f"reminder-task-{getattr(task_or_id, 'pk', task_or_id)}"


def require_postgresql() -> None:
    """Concurrency needs real row locks and one connection per thread."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent reminder delivery is checked on PostgreSQL only")
