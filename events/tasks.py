"""Celery tasks (with a broker): thin wrappers over the relay."""

from celery import shared_task

from . import relay


@shared_task(ignore_result=True)
def relay_outbox() -> int:
    """Deliver what is due now; queued after each commit that wrote events."""
    return relay.relay_pending().delivered


@shared_task(ignore_result=True)
def sweep_outbox() -> int:
    """The periodic safety net (celery beat): retries and anything a kick missed."""
    return relay.relay_pending().delivered


@shared_task(ignore_result=True)
def prune_outbox() -> tuple[int, int]:
    return relay.prune()


@shared_task(ignore_result=True)
def fire_embedded_jobs() -> int:
    """Without Dapr, celery beat is the one scheduler that fires the database-kept jobs."""
    from .jobs_client import DatabaseJobs

    return DatabaseJobs().fire_due()
