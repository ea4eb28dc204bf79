"""The notification consumers: reminder jobs follow task events; due reminders are e-mailed.

Which events and jobs reach these handlers, and under which consumer names, is
``events.routing.TABLE``.
"""

from __future__ import annotations

import logging

from django.utils.dateparse import parse_datetime

from events.cloudevents import CloudEvent
from events.dapr import DaprError
from events.dispatch import RetryLater, SidecarMisconfigured
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
    """Claim and send the delivery; a duplicate event loses the claim and sends nothing."""
    remind_at = parse_datetime(str(event.data.get("remind_at", "")))
    delivery = ReminderDelivery.objects.filter(
        task_id=event.data.get("task_id"), remind_at=remind_at
    ).first()
    if delivery is None:
        logger.info("reminder.due for an unknown delivery ignored data=%s", event.data)
        return
    services.reminder_deliver(delivery.pk)


def reminder_job(name: str, data: dict) -> None:
    services.reminder_job_fired(data)


def sweep_job(name: str, data: dict) -> None:
    services.reminders_sweep()
