"""Recurrence tests run on the embedded default: events are relayed in-process."""

import pytest


@pytest.fixture(autouse=True)
def embedded_events(settings):
    """Pin the embedded defaults whatever the environment says: no Dapr, no Celery."""
    settings.CELERY_BROKER_URL = ""
    settings.TIDELINE_BACKGROUND = False
    settings.DAPR_ENABLED = False
    settings.EVENT_CONSUMERS = ["all"]
    settings.EVENT_TOPICS = {
        "task_events": "task-events",
        "task_updates": "task-updates",
        "task_recurrence": "task-recurrence",
        "task_reminders": "task-reminders",
    }
    return settings
