"""The recurrence consumer: ``task.completed`` on ``task-recurrence`` spawns the next one
(routed here by ``events.routing.TABLE``)."""

from events.cloudevents import CloudEvent

from .services import spawn_next_instance


def spawn_on_completion(event: CloudEvent) -> None:
    spawn_next_instance(task_id=event.data["task_id"])
