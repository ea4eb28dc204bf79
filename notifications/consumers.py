"""The notification consumers: reminder jobs follow task events; due reminders are e-mailed.

Which events and jobs reach these handlers, and under which consumer names, is
``events.routing.TABLE``.
"""

from __future__ import annotations

import logging

from django.utils.dateparse import parse_datetime

from events.cloudevents import MAX_DATABASE_INT, CloudEvent
from events.dapr import DaprError
from events.dispatch import RetryLater, SidecarMisconfigured, Unprocessable
from events.registry import EventType
from events.transports import Answer, classify

from . import services
from .models import ReminderDelivery

logger = logging.getLogger(__name__)

#: A task.updated with none of these changes leaves the reminder job as it is.
REMINDER_FIELDS = {"remind_at", "remind_before", "due_date", "completed", "timezone"}


def schedule_reminder_job(event: CloudEvent) -> None:
    """Keep the task's one-shot job in step; the Jobs API call is idempotent (overwrite)."""
    if event.event_type == EventType.TASK_UPDATED and not (
        set(event.data.get("changes", {})) & REMINDER_FIELDS
    ):
        return
    try:
        services.reminder_sync(int(event.data["task_id"]))
    except DaprError as exc:
        if classify(exc).answer is Answer.CONFIGURATION:  # 401/403: the sidecar's setup
            raise SidecarMisconfigured(str(exc)) from exc
        raise RetryLater(str(exc)) from exc  # the sidecar or its Scheduler is unavailable


def send_reminder_email(event: CloudEvent) -> None:
    """Claim and send the delivery; a duplicate event loses the claim and sends nothing.

    A ``remind_at`` that is no date-time (``2030-02-30``) can never match a delivery:
    ``Unprocessable``, a dead letter at once.
    """
    text = str(event.data.get("remind_at", ""))
    try:
        remind_at = parse_datetime(text)
    except ValueError as exc:
        raise Unprocessable(f"remind_at {text!r} is not a date-time: {exc}") from exc
    if remind_at is None:
        raise Unprocessable(f"remind_at {text!r} is not a date-time")
    delivery = ReminderDelivery.objects.filter(
        task_id=event.data.get("task_id"), remind_at=remind_at
    ).first()
    if delivery is None:
        logger.info("reminder.due for an unknown delivery ignored data=%s", event.data)
        return
    services.reminder_deliver(delivery.pk)


def reminder_job(name: str, data: dict) -> None:
    """A task id that no database id can be is ``Unprocessable``: the trigger is done."""
    task_id = data.get("task_id")
    if isinstance(task_id, int) and not -MAX_DATABASE_INT - 1 <= task_id <= MAX_DATABASE_INT:
        raise Unprocessable(f"task_id {task_id} is out of the range of a database id")
    services.reminder_job_fired(data)


def sweep_job(name: str, data: dict) -> None:
    services.reminders_sweep()
