"""The Celery app, used only when CELERY_BROKER_URL is set (see the README's processes).

``celery beat`` runs the shared entries of the runtime's schedule (``events.runtime.SCHEDULE``,
``Runtime.beat_schedule``), the same table the embedded scheduler runs without a broker: each
entry is sent as ``events.tasks.run_periodic``. The role-bound entries (held consumer failures,
embedded jobs) stay in the server processes serving their roles, whatever the mode.
"""

import os

from celery import Celery

from events.runtime import runtime

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_project.settings")

RUN_PERIODIC = "events.tasks.run_periodic"

app = Celery("tideline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule() -> dict[str, dict]:
    """``beat_schedule`` for the runtime's beat schedule: one entry per shared periodic work."""
    return {
        entry.name: {"task": RUN_PERIODIC, "schedule": entry.seconds(), "args": (entry.name,)}
        for entry in runtime().beat_schedule
    }


@app.on_after_configure.connect
def use_the_runtime_schedule(sender: Celery, **kwargs) -> None:
    """Read when the app is configured, before ``celery beat`` builds its scheduler."""
    sender.conf.beat_schedule = beat_schedule()
