"""Small helpers shared by the events tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from events.models import OutboxEvent
from tests.support.fake_dapr import FakeDaprSidecar

TEST_CONSUMER = "events-tests"


def rows(**filters) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(**filters).order_by("seq"))


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def start_sidecar(settings, **kwargs) -> FakeDaprSidecar:
    """Start a stand-in sidecar on a free loopback port and point the app's settings at it."""
    sidecar = FakeDaprSidecar(app_id=settings.DAPR_APP_ID, **kwargs).start()
    settings.DAPR_ENABLED = True
    settings.DAPR_HTTP_HOST = sidecar.host
    settings.DAPR_HTTP_PORT = sidecar.port
    settings.DAPR_API_TOKEN = kwargs.get("api_token") or ""
    settings.APP_API_TOKEN = kwargs.get("app_token") or ""
    return sidecar
