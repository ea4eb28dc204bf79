"""Event types, their CloudEvent types and the configured names of the logical topics.

Which topics each event goes to, and who consumes them, is ``events.routing.TABLE``.
"""

from __future__ import annotations

from enum import StrEnum

from django.conf import settings


class EventType(StrEnum):
    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_COMPLETED = "task.completed"
    TASK_DELETED = "task.deleted"
    REMINDER_DUE = "reminder.due"


#: What a consumer can rely on in each event's ``data`` (name -> type); an event without
#: them can never be processed and is dropped.
REQUIRED_DATA: dict[EventType, dict[str, type]] = {
    EventType.TASK_CREATED: {"task_id": int, "user_id": int, "task_data": dict},
    EventType.TASK_UPDATED: {"task_id": int, "user_id": int, "task_data": dict, "changes": dict},
    EventType.TASK_COMPLETED: {"task_id": int, "user_id": int, "task_data": dict},
    EventType.TASK_DELETED: {"task_id": int, "user_id": int},
    EventType.REMINDER_DUE: {"task_id": int, "user_id": int, "remind_at": str},
}

CLOUDEVENT_TYPE_PREFIX = "com.tideline."
CLOUDEVENT_TYPE_SUFFIX = ".v1"


def cloudevent_type(event_type: str) -> str:
    """``task.created`` → ``com.tideline.task.created.v1``."""
    return f"{CLOUDEVENT_TYPE_PREFIX}{event_type}{CLOUDEVENT_TYPE_SUFFIX}"


def event_type_from_cloudevent(ce_type: str) -> EventType | None:
    if not (
        ce_type.startswith(CLOUDEVENT_TYPE_PREFIX) and ce_type.endswith(CLOUDEVENT_TYPE_SUFFIX)
    ):
        return None
    name = ce_type[len(CLOUDEVENT_TYPE_PREFIX) : -len(CLOUDEVENT_TYPE_SUFFIX)]
    try:
        return EventType(name)
    except ValueError:
        return None


def topic(name: str) -> str:
    """The configured topic name for a logical topic (``task_events`` → ``task-events``)."""
    return settings.EVENT_TOPICS[name]
