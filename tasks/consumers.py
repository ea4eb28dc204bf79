"""The recurrence consumer: ``task.completed`` of a repeating task spawns its next instance
(routed here, for the recurrence role, by ``events.routing.TABLE``)."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime

from events.cloudevents import CloudEvent

from .services import task_spawn_next


def spawn_on_completion(event: CloudEvent) -> None:
    """Create the instance due when the completion said (``task_data.next_occurrence_at``)."""
    next_due = event.data["task_data"].get("next_occurrence_at")
    task_spawn_next(
        task_id=event.data["task_id"], next_due=parse_datetime(next_due) if next_due else None
    )
