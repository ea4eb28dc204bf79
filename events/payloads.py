"""One payload builder per entity: the JSON that goes into an event's ``data``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone


def json_value(value: Any) -> Any:
    """A JSON-safe form of a field value (ISO 8601 date-times, seconds for durations)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def timestamp() -> str:
    return json_value(timezone.now())


def task_data(task) -> dict[str, Any]:
    """The task's final state, tags included (same names as the REST API's task JSON)."""
    return {
        "id": task.pk,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "completed_at": json_value(task.completed_at),
        "priority": task.priority,
        "due_date": json_value(task.due_date),
        "timezone": task.timezone,
        "category": task.category_id,
        "tags": task.tag_names(),
        "recurrence_rule": task.recurrence_rule,
        "recurrence_type": task.recurrence_type,
        "recurrence_interval": task.recurrence_interval,
        "recurrence_mode": task.recurrence_mode,
        "remind_at": json_value(task.remind_at),
        "remind_before": json_value(task.remind_before),
        "reminder_sent": task.reminder_sent,
        "next_occurrence_at": json_value(task.next_occurrence_at),
        "last_triggered_at": json_value(task.last_triggered_at),
        "parent": task.parent_id,
        "created_at": json_value(task.created_at),
        "updated_at": json_value(task.updated_at),
    }


def changes_data(changes: dict) -> dict[str, dict[str, Any]]:
    """``{field: Change(old, new)}`` → ``{field: {"old": ..., "new": ...}}``."""
    return {
        name: {"old": json_value(change.old), "new": json_value(change.new)}
        for name, change in changes.items()
    }


def task_event(task, **extra: Any) -> dict[str, Any]:
    return {
        "task_id": task.pk,
        "task_data": task_data(task),
        "user_id": task.user_id,
        "timestamp": timestamp(),
        **extra,
    }


def task_deleted_event(*, task_id: int, user_id: int) -> dict[str, Any]:
    return {"task_id": task_id, "user_id": user_id, "timestamp": timestamp()}


def reminder_due_event(task, *, remind_at: dt.datetime) -> dict[str, Any]:
    return {
        "task_id": task.pk,
        "title": task.title,
        "due_at": json_value(task.due_date),
        "remind_at": json_value(remind_at),
        "user_id": task.user_id,
    }
