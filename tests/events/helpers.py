"""Small helpers shared by the events tests."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable

import requests

from events import routing
from events.models import OutboxEvent
from events.routing import Consumer, JobCallback
from tests.support.fake_dapr import CLOUDEVENTS_CONTENT_TYPE, FakeDaprSidecar

#: The role of the tests' own consumers (``EVENT_CONSUMERS`` in these tests).
TEST_CONSUMER = "events-tests"


def rows(**filters) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(**filters).order_by("seq"))


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 5.0,
    interval: float = 0.02,
    *,
    what: str = "condition met",
    explain: Callable[[], str] = str,
):
    """``predicate()`` once it is true; else AssertionError naming ``what``, with
    ``explain()`` (e.g. the logs of the processes involved)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}\n{explain()}")
        time.sleep(interval)


def add_routes(
    monkeypatch,
    *,
    role: str = TEST_CONSUMER,
    consumers: dict[str, tuple[Consumer, ...]] | None = None,
    jobs: tuple[JobCallback, ...] = (),
) -> routing.RoutingTable:
    """Serve extra consumers (by logical topic) and job callbacks in ``role``, beside the
    app's own, for the test's duration."""
    table = routing.TABLE
    consumers = consumers or {}
    extended = dataclasses.replace(
        table,
        roles=table.roles if role in table.roles else (*table.roles, role),
        consumers={
            topic: (*table.consumers.get(topic, ()), *consumers.get(topic, ()))
            for topic in {**table.consumers, **consumers}
        },
        jobs=(*table.jobs, *jobs),
    )
    monkeypatch.setattr(routing, "TABLE", extended)
    return extended


#: The daprd release that serves each Jobs API prefix the app can be configured with.
RUNTIME_FOR_JOBS_PREFIX = {"v1.0": "1.18", "v1.0-alpha1": "1.16"}


def start_sidecar(settings, **kwargs) -> FakeDaprSidecar:
    """Start a stand-in sidecar on a free loopback port and point the app's settings at it.

    Unless ``runtime_version`` is given, it claims the daprd release that serves the app's
    ``DAPR_JOBS_API_PREFIX`` (1.18 for ``v1.0``, 1.16 for ``v1.0-alpha1``)."""
    kwargs.setdefault("runtime_version", RUNTIME_FOR_JOBS_PREFIX[settings.DAPR_JOBS_API_PREFIX])
    sidecar = FakeDaprSidecar(app_id=settings.DAPR_APP_ID, **kwargs).start()
    settings.DAPR_ENABLED = True
    settings.DAPR_HTTP_HOST = sidecar.host
    settings.DAPR_HTTP_PORT = sidecar.port
    settings.DAPR_API_TOKEN = kwargs.get("api_token") or ""
    settings.APP_API_TOKEN = kwargs.get("app_token") or ""
    return sidecar


def publish_poison_reminder(sidecar_url: str, api_token: str, *, pubsub: str, source: str) -> dict:
    """Publish, through a sidecar as any producer could, a well-formed ``reminder.due`` its
    handler fails on every time with a database error, which is retried (not Unprocessable):
    PostgreSQL refuses a UTC offset of 16 h or more. The event as published."""
    poison_id = f"poison-{uuid.uuid4()}"
    poison = {
        "specversion": "1.0",
        "id": poison_id,
        "source": source,
        "type": "com.tideline.reminder.due.v1",
        "datacontenttype": "application/json",
        "data": {"task_id": 987654, "user_id": 1, "remind_at": "2030-02-28T09:00:00+16:00"},
    }
    published = requests.post(
        f"{sidecar_url}/v1.0/publish/{pubsub}/task-reminders",
        params={"metadata.partitionKey": "987654"},
        data=json.dumps(poison),
        headers={"Content-Type": CLOUDEVENTS_CONTENT_TYPE, "dapr-api-token": api_token},
        timeout=5,
    )
    assert published.status_code == 204, published.text
    return poison
