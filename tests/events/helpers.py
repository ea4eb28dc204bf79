"""Small helpers shared by the events tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import connections

from events.models import OutboxEvent
from tests.support.fake_dapr import FakeDaprSidecar

TEST_CONSUMER = "events-tests"


def run_in_threads(count: int, target: Callable[[int], object]) -> list[object]:
    """Run ``target(i)`` on ``count`` threads released together; re-raise the first error.

    Each thread closes its own database connections, so none outlives the test.
    """
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target(index)
        except BaseException as exc:  # surfaced in the test's thread below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


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
