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
    """Run the periodic work ``name`` of celery beat's schedule (``Runtime.beat_schedule``,
    sent by ``todo_project/celery.py`` at its interval); a role-bound entry is refused: it
    runs in the processes serving its role."""
    runtime().beat_entry(name).run()
