"""The recurrence consumer: ``task.completed`` on ``task-recurrence`` spawns the next one."""

from events.cloudevents import CloudEvent
from events.dispatch import subscribe
from events.registry import EventType

from .services import spawn_next_instance


@subscribe(consumer="recurrence", topic="task_recurrence", event_types=[EventType.TASK_COMPLETED])
def spawn_on_completion(event: CloudEvent) -> None:
    spawn_next_instance(task_id=event.data["task_id"])
