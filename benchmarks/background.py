"""Work off the request path: the relay's backlog to a loopback sidecar, and the latency
from a commit to its in-process consumer (the embedded mode)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from .cases import Goal, Result
from .data import Size

ROOT = Path(__file__).resolve().parent.parent
BACKLOG = 10_000


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sidecar() -> tuple[subprocess.Popen, int]:
    """tests/support/fake_dapr.py as its own process (its HTTP server must not share our
    GIL), accepting publishes; no app to deliver to."""
    import requests

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_dapr", "--port", str(port), "--app-url", ""],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/v1.0/healthz/outbound", timeout=0.5)
            return process, port
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the fake sidecar did not start")


def _backlog(user_id: int, count: int) -> None:
    from events.models import OutboxEvent
    from events.registry import EventType
    from events.routing import topics_for

    OutboxEvent.objects.all().delete()
    topic = topics_for(EventType.TASK_UPDATED, {"task_id": 1, "changes": {}})[0]
    OutboxEvent.objects.bulk_create(
        [
            OutboxEvent(
                event_type=str(EventType.TASK_UPDATED),
                topic=topic,
                partition_key=str(i % 5000),
                data={
                    "task_id": i % 500,
                    "user_id": user_id,
                    "changes": {"title": {"old": f"Task {i}", "new": f"Task {i} renamed"}},
                },
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    # What autovacuum does once a table grew this much: the claim query is planned with
    # the backlog's statistics.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_outboxevent")


def relay(bulk: bool):
    def run(connection, size: Size, *, rounds: int) -> Result:
        from django.test.utils import override_settings

        from events.relay import relay_pending
        from events.transports import DaprTransport

        count = BACKLOG if size.tasks >= 100_000 else 200
        name = "relay, bulk" if bulk else "relay, one by one"
        process, port = _sidecar()
        try:
            with override_settings(DAPR_ENABLED=True, DAPR_HTTP_PORT=port, DAPR_BULK_PUBLISH=bulk):
                _backlog(1, count)
                started = time.perf_counter()
                stats = relay_pending(transport=DaprTransport())
                elapsed = time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(10)
        if stats.delivered != count:
            raise AssertionError(f"{name}: delivered {stats.delivered} of {count}")
        return Result(
            name,
            {"app": [elapsed]},
            goal=Goal(rate=3000) if bulk and connection.vendor == "postgresql" else None,
            rate=count / elapsed,
            note=f"{count} events in {elapsed:.2f} s",
        )

    return run


def commit_to_handler(connection, size: Size, *, rounds: int) -> Result:
    """A task created and committed, until the in-process transport delivered its event
    to the consumers (the embedded worker thread, kicked on commit)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.test.utils import override_settings

    from events import background, dispatch
    from tasks import services

    user = get_user_model().objects.get(pk=1)
    delivered: dict[int, float] = {}
    waiting = threading.Condition()
    original = dispatch.deliver

    def deliver(topic, envelope):
        status = original(topic, envelope)
        task_id = (envelope.get("data") or {}).get("task_id")
        with waiting:
            delivered.setdefault(task_id, time.perf_counter())
            waiting.notify_all()
        return status

    samples = []
    with override_settings(DAPR_ENABLED=False):
        from events.models import OutboxEvent, OutboxState

        OutboxEvent.objects.filter(state=OutboxState.PENDING).delete()
        dispatch.deliver = deliver
        background.worker.start()
        try:
            for r in range(-3, max(rounds, 5)):
                committed: list[float] = []
                with transaction.atomic():
                    # First of the on-commit callbacks: runs right after COMMIT, before the
                    # one that kicks the worker.
                    transaction.on_commit(lambda c=committed: c.append(time.perf_counter()))
                    task = services.task_create(user=user, title=f"Latency probe {r}")
                with waiting:
                    if not waiting.wait_for(lambda pk=task.pk: pk in delivered, timeout=15):
                        raise AssertionError("the in-process consumer never ran")
                if r >= 0:
                    samples.append(delivered[task.pk] - committed[0])
        finally:
            background.worker.stop()
            dispatch.deliver = original
    return Result("commit → handler (embedded)", {"app": samples})


CASES = {
    "relay, bulk": relay(True),
    "relay, one by one": relay(False),
    "commit → handler (embedded)": commit_to_handler,
}
