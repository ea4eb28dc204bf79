"""The recurrence consumer: ``task.completed`` of a repeating task spawns its next instance
(routed here, for the recurrence role, by ``events.routing.TABLE``)."""

from __future__ import annotations

import datetime as dt

from django.utils.dateparse import parse_datetime

from events.cloudevents import CloudEvent
from events.dispatch import Unprocessable

from .services import task_spawn_next


def spawn_on_completion(event: CloudEvent) -> None:
    """Create the instance due when the completion said (``task_data.next_occurrence_at``)."""
    next_due = event.data["task_data"].get("next_occurrence_at")
    task_spawn_next(task_id=event.data["task_id"], next_due=_date_time(next_due))


def _date_time(value: object) -> dt.datetime | None:
    """``next_occurrence_at`` read; Unprocessable when it is there but no date-time (no
    retry can make it one)."""
    if not value:
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible, e.g. 30 February
        parsed = None
    if parsed is None:
        raise Unprocessable(f"task_data.next_occurrence_at is not a date-time: {value!r}")
    return parsed
