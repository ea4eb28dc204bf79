"""The world every fault drill runs in: Tideline as deployed, with its faults at hand.

One app (``EVENT_CONSUMERS=all``: it writes events and consumes them) under gunicorn on a
scratch PostgreSQL database, its stand-in sidecar (tests/support/fake_dapr.py: publishes to a
Kafka-like broker, delivers to the app, fires the Scheduler's jobs) and a real SMTP server
(aiosmtpd). The app reaches PostgreSQL through a TCP proxy (tests/support/tcp_proxy.py). Each
drill takes one piece down and brings it back: ``world.sidecar.stop()`` / ``start()``,
``world.smtp.stop()`` / ``start()``, ``world.database.cut()`` / ``restore()``. The drills
observe the app over HTTP, the sidecar's records and the SMTP server's inbox, and read the
scratch database (never write it) to count what was lost.

One world for the drills of a run (a package-scoped fixture): the app starts once, and stops
after the last drill.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests

from tests.events.helpers import wait_until
from tests.events.test_topology import app_environment, postgres_url
from tests.notifications.conftest import LoopbackSmtp, Received
from tests.support.fake_dapr import FakeDaprSidecar, InMemoryBroker, RetryPolicy
from tests.support.processes import AppProcess, manage, scratch_postgres_database
from tests.support.tcp_proxy import TcpProxy

APP_ID = "tideline"
PARTITIONS = 4  # Kafka partitions per topic: a task's events keep their order, tasks overlap


@dataclass
class World:
    app: AppProcess
    sidecar: FakeDaprSidecar
    smtp: LoopbackSmtp
    database: TcpProxy  # between the app and PostgreSQL
    database_url: str  # the scratch database, straight to PostgreSQL (the drills' reads)
    api: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The REST API, as the signed-up user."""
        kwargs.setdefault("timeout", 30)
        return self.api.request(method, f"{self.app.url}/api{path}", **kwargs)

    def create_task(self, title: str, **fields: Any) -> int:
        response = self.call("POST", "/tasks/", json={"title": title, **fields})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def query(self, sql: str, *params: Any) -> list[tuple]:
        """Read the scratch database (what the drills count; they never write it)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def pending_events(self) -> int:
        """Outbox rows not yet published (pending or parked)."""
        [(count,)] = self.query(
            "SELECT count(*) FROM events_outboxevent WHERE state <> 'delivered'"
        )
        return count

    def emails_for(self, task_id: int) -> list[Received]:
        return [m for m in self.smtp.messages if f"/tasks/{task_id}/" in m.text]

    def wait_until(self, what: str, predicate: Callable[[], Any], timeout: float = 60) -> Any:
        """``predicate()`` once it is true; else AssertionError with the app's log."""
        return wait_until(
            predicate, timeout, interval=0.1, what=what, explain=lambda: self.app.log_tail(60)
        )


def report(drill: str, **figures: Any) -> None:
    """Print a drill's measured figures on one line (``pytest -m drill -s`` shows them)."""
    shown = " ".join(
        f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"\nDRILL {drill}: {shown}", flush=True)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.started


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    database = postgres_url()
    workdir = tmp_path_factory.mktemp("drills")
    smtp = LoopbackSmtp().start()
    with scratch_postgres_database(database, "tideline_drills_") as database_url:
        manage(app_environment(database_url, smtp, workdir), "migrate", "--noinput", "-v0")
        server = urlsplit(database_url)
        proxy = TcpProxy(server.hostname or "127.0.0.1", server.port or 5432).start()
        through_proxy = urlunsplit(
            server._replace(netloc=f"{server.username}@127.0.0.1:{proxy.port}")
        )
        env = app_environment(through_proxy, smtp, workdir)
        app = AppProcess("app", {}, workdir / "app.log")
        sidecar = FakeDaprSidecar(
            app.url,
            app_id=APP_ID,
            runtime_version="1.18",
            api_token="drills-dapr-token",
            app_token="drills-app-token",
            auto_deliver=True,
            fire_jobs=True,
            retry_policy=RetryPolicy(max_retries=-1, interval=0.5, max_interval=2.0),
            job_retry_interval=0.5,
            broker=InMemoryBroker(partitions=PARTITIONS),
        ).start()
        app.env = {
            **env,
            "DAPR_APP_ID": APP_ID,
            "EVENT_CONSUMERS": "all",
            "DAPR_HTTP_PORT": str(sidecar.port),
            "DAPR_API_TOKEN": sidecar.api_token,
            "APP_API_TOKEN": sidecar.app_token,
            "TIDELINE_VAR_DIR": str(workdir / "var"),
            "SITE_URL": app.url,
            "THROTTLE_USER": "1000000/min",  # the drills write faster than any person
            "REMINDER_RETRY_BASE_SECONDS": "1",
            "DATABASE_RETRY_AFTER_SECONDS": "1",
        }
        try:
            app.start()
            world = World(app, sidecar, smtp, proxy, database_url)
            sign_up(world)
            yield world
        finally:
            app.stop()
            sidecar.stop()
            smtp.stop()
            proxy.stop()
        assert sidecar.errors == [], sidecar.errors


def sign_up(world: World) -> None:
    user = {
        "username": f"drill-{uuid.uuid4().hex[:8]}",
        "email": "drills@example.com",
        "password": "analytical-engine-1843",
    }
    assert world.call("POST", "/auth/register/", json=user).status_code == 201
    token = world.call("POST", "/auth/token/", json=user).json()["token"]
    world.api.headers["Authorization"] = f"Token {token}"


@pytest.fixture
def world_ready(world: World) -> World:
    """The world with every piece up and nothing left in the outbox from an earlier drill."""
    world.database.restore()
    world.wait_until("the outbox is empty", lambda: world.pending_events() == 0)
    return world
