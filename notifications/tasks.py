"""Celery tasks (with a broker): thin wrappers over the reminder services."""

from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def deliver_reminder(delivery_id: int) -> str:
    """Retry sending one reminder after an SMTP failure (the claim makes it safe)."""
    return services.reminder_deliver(delivery_id)
