"""Celery tasks (with a broker): thin wrappers over the relay and the runtime's schedule."""

from celery import shared_task

from . import relay
from .runtime import runtime


@shared_task(ignore_result=True)
def relay_outbox() -> int:
    """Deliver what is due now; queued after each commit that wrote events."""
    return relay.relay_pending().delivered


@shared_task(ignore_result=True)
def run_periodic(name: str) -> None:
    """Run the periodic work ``name`` of ``events.runtime.SCHEDULE``: what celery beat sends,
    one entry at its interval (``todo_project/celery.py``)."""
    runtime().periodic(name).run()
