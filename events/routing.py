"""What runs when: the one routing table of events, topics, consumers and job callbacks.

Read ``TABLE`` below to answer "what runs when a task is completed?": ``routes`` says which
topics an event is written to (one outbox row each), ``consumers`` which handlers each topic
feeds, under which stable name and in which role, and ``jobs`` which handler a due Dapr job
calls back. ``emit`` (``events.outbox``), the dispatcher (``events.dispatch``),
``/dapr/subscribe`` and ``/job/<name>`` (``events.views``, ``events.jobs``) and the table at the
top of docs/events.md (``manage.py routing_table``) are all derived from it, and
``manage.py check`` validates it (``events.checks``).

Topics here are logical names; ``settings.EVENT_TOPICS`` maps them to the configured topic
names (``events.registry.topic``). A process serves the consumers and job callbacks of the
roles named in ``settings.EVENT_CONSUMERS`` ("all", the default, serves every role; "none"
serves none).

A consumer's name is its idempotency key (``events.ProcessedEvent.consumer``): never rename
one without a data migration of the records (see events/migrations/0003_*).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from notifications.consumers import (
    reminder_job,
    schedule_reminder_job,
    send_reminder_email,
    sweep_job,
)
from notifications.services import SWEEP_JOB_NAME
from tasks.consumers import spawn_on_completion
from webhooks.consumers import deliver_webhooks

from .cloudevents import CloudEvent
from .live import record_live_update
from .registry import EventType, topic

Handler = Callable[[CloudEvent], None]
JobHandler = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Condition:
    """A named test on an event's ``data``: the route is taken only when it holds."""

    description: str
    holds: Callable[[dict], bool]


@dataclass(frozen=True)
class Route:
    """An event goes to ``topic`` (logical), always or only ``when`` the condition holds."""

    topic: str
    when: Condition | None = None


@dataclass(frozen=True)
class Consumer:
    """A handler of a topic's events of ``event_types``, served by processes of ``role``.

    A transactional handler runs in one transaction with the (name, event id) record, so a
    duplicate delivery has no second effect. A non-transactional one must be idempotent by
    itself (e.g. network I/O guarded by its own atomic claim).
    """

    name: str
    handler: Handler
    event_types: tuple[EventType, ...]
    role: str
    transactional: bool = True


@dataclass(frozen=True)
class JobCallback:
    """The handler of due jobs whose name fully matches ``pattern`` (``POST /job/<name>``).

    Dapr calls a job back only on the app id that scheduled it: the role that schedules
    the job must be the role that serves its callback.
    """

    name: str
    pattern: str
    handler: JobHandler
    role: str

    def matches(self, job_name: str) -> bool:
        return re.fullmatch(self.pattern, job_name) is not None


@dataclass(frozen=True)
class RoutingTable:
    roles: tuple[str, ...]
    routes: dict[EventType, tuple[Route, ...]]
    consumers: dict[str, tuple[Consumer, ...]]
    jobs: tuple[JobCallback, ...]


TASK_REPEATS = Condition(
    "the task repeats (`has_recurrence`)", lambda data: bool(data.get("has_recurrence"))
)

TASK_EVENT_TYPES = (
    EventType.TASK_CREATED,
    EventType.TASK_UPDATED,
    EventType.TASK_COMPLETED,
    EventType.TASK_DELETED,
)

TABLE = RoutingTable(
    # web serves people and the API, and follows task-updates for their open pages; the
    # other consumers run in their own roles.
    roles=("web", "notifications", "recurrence"),
    routes={
        EventType.TASK_CREATED: (Route("task_events"), Route("task_updates")),
        EventType.TASK_UPDATED: (Route("task_events"), Route("task_updates")),
        EventType.TASK_COMPLETED: (
            Route("task_events"),
            Route("task_updates"),
            Route("task_recurrence", when=TASK_REPEATS),
        ),
        EventType.TASK_DELETED: (Route("task_events"), Route("task_updates")),
        EventType.REMINDER_DUE: (Route("task_reminders"),),
    },
    consumers={
        "task_events": (
            Consumer(
                name="notifications.reminder-job-sync",
                handler=schedule_reminder_job,
                event_types=TASK_EVENT_TYPES,
                role="notifications",
                transactional=False,  # calls the Jobs API; an overwrite is idempotent
            ),
            # Outgoing notifications, so the notifications role (docs/webhooks.md).
            Consumer(
                name="webhooks.deliver",
                handler=deliver_webhooks,
                event_types=TASK_EVENT_TYPES,
                role="notifications",
                transactional=False,  # HTTP; the (endpoint, event) row and its claim
            ),
        ),
        # For live views: the web role's open pages (events/live.py) and outside clients.
        "task_updates": (
            Consumer(
                name="web.live-updates",
                handler=record_live_update,
                event_types=TASK_EVENT_TYPES,
                role="web",
            ),
        ),
        "task_recurrence": (
            Consumer(
                name="recurrence.spawn-next",
                handler=spawn_on_completion,
                event_types=(EventType.TASK_COMPLETED,),
                role="recurrence",
            ),
        ),
        "task_reminders": (
            Consumer(
                name="notifications.reminder-email",
                handler=send_reminder_email,
                event_types=(EventType.REMINDER_DUE,),
                role="notifications",
                transactional=False,  # SMTP; the delivery's claim makes it idempotent
            ),
            Consumer(
                name="webhooks.deliver-reminder",
                handler=deliver_webhooks,
                event_types=(EventType.REMINDER_DUE,),
                role="notifications",
                transactional=False,  # HTTP (webhooks, ntfy); as webhooks.deliver
            ),
        ),
    },
    jobs=(
        # Scheduled by notifications.services.reminder_sync (the consumer above).
        JobCallback(
            name="notifications.reminder-due",
            pattern=r"reminder-task-\d+",
            handler=reminder_job,
            role="notifications",
        ),
        # Registered at start-up by the notifications role (notifications/apps.py).
        JobCallback(
            name="notifications.reminder-sweep",
            pattern=SWEEP_JOB_NAME,
            handler=sweep_job,
            role="notifications",
        ),
    ),
)


def topics_for(event_type: EventType, data: dict) -> list[str]:
    """The configured topics ``emit`` writes an event to: one outbox row each."""
    return [
        topic(route.topic)
        for route in TABLE.routes[event_type]
        if route.when is None or route.when.holds(data)
    ]
