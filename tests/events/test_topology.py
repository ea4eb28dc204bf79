"""The deployed topology: three apps, three sidecars, one database, one broker.

As in production, Tideline runs as three deployments of the same code, each under gunicorn with
its own Dapr sidecar and app id: ``web`` (``EVENT_CONSUMERS=web``: serves people, writes events
and follows ``task-updates`` for open pages), ``notifications`` (reminder jobs and e-mails) and
``recurrence`` (spawns the next instance of a repeating task). They share one PostgreSQL
database (migrated once) and one broker: the stand-in sidecars (tests/support/fake_dapr.py) use
Dapr's ``pubsub.redis`` on the Redis server, one consumer group per app id, one partition per
topic (so every task shares it), and redeliver without end (harsher than dapr/resiliency.yaml's
finite inbound policy). A failing event must not hold its partition: the app acknowledges it,
retries it itself and, after ``EVENT_MAX_ATTEMPTS``, publishes it to the dead-letter topic.
E-mail goes to a real SMTP server (aiosmtpd).

PostgreSQL and Redis are required: the tests skip without them, or fail with
REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import require_service
from tests.events.helpers import publish_poison_reminder, wait_until
from tests.notifications.conftest import LoopbackSmtp, Received
from tests.support.fake_dapr import (
    SUCCESS,
    FakeDaprSidecar,
    RedisStreamsBroker,
    RetryPolicy,
)
from tests.support.processes import AppProcess, manage, scratch_postgres_database

pytestmark = pytest.mark.slow

PUBSUB = "pubsub-kafka"  # the component name the app publishes to (DAPR_PUBSUB_NAME)
DEAD_LETTER_TOPIC = "tideline-dead-letter"
EVENT_MAX_ATTEMPTS = 3
EVENT_RETRY_BASE_SECONDS = 3  # a held event's attempts: at 0 s, about 3 s, about 9 s
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tideline"
WAIT = 30.0  # seconds any one step may take


# --------------------------------------------------------------------------- the world


@dataclass
class Node:
    """One deployment: the app under gunicorn and its sidecar."""

    role: str
    app: AppProcess
    sidecar: FakeDaprSidecar

    def job_names(self) -> set[str]:
        """Every job this sidecar was ever asked to schedule."""
        return {name for op, name, _ in self.sidecar.job_log if op == "schedule"}

    def triggered(self, name: str) -> list[int]:
        """The HTTP statuses of this sidecar's callbacks of job ``name``."""
        return [status for job, status in self.sidecar.job_triggers if job == name]


@dataclass
class Topology:
    web: Node
    notifications: Node
    recurrence: Node
    broker: RedisStreamsBroker
    smtp: LoopbackSmtp
    api: requests.Session = field(default_factory=requests.Session)

    @property
    def nodes(self) -> list[Node]:
        return [self.web, self.notifications, self.recurrence]

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The REST API of the web deployment, as the signed-up user."""
        return self.api.request(method, f"{self.web.app.url}/api{path}", timeout=10, **kwargs)

    def create_task(self, title: str, **fields: Any) -> int:
        response = self.call("POST", "/tasks/", json={"title": title, **fields})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def emails_for(self, task_id: int) -> list[Received]:
        """The reminder e-mails the SMTP server accepted for a task (by its link)."""
        return [m for m in self.smtp.messages if f"/tasks/{task_id}/" in m.text]

    def wait_until(self, what: str, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
        """``predicate()`` once it is true; else AssertionError with every app's log."""
        return wait_until(
            predicate,
            timeout,
            interval=0.1,
            what=what,
            explain=lambda: "\n".join(
                f"--- {n.role} ---\n{n.app.log_tail(40)}" for n in self.nodes
            ),
        )


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def in_seconds(seconds: float) -> dt.datetime:
    """A UTC instant ``seconds`` from now, to the second (as a client would type it)."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).replace(microsecond=0)


def postgres_url() -> str:
    """DATABASE_URL when it names PostgreSQL, else the local server's default database."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = DEFAULT_DATABASE_URL
    parts = urlsplit(url)
    require_service("PostgreSQL", parts.hostname or "127.0.0.1", parts.port or 5432)
    return url


def app_environment(database_url: str, smtp: LoopbackSmtp, workdir: Path) -> dict[str, str]:
    """What every deployment shares; each adds its app id, role, sidecar port and tokens."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "todo_project.settings",
        "DEBUG": "false",
        "SECRET_KEY": "topology-tests-only-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "INFO",
        "DAPR_ENABLED": "true",
        "DAPR_HTTP_HOST": "127.0.0.1",
        "DAPR_JOBS_API_PREFIX": "v1.0",  # the stand-ins claim daprd 1.18
        "DAPR_PUBSUB_NAME": PUBSUB,
        "EVENT_DEAD_LETTER_TOPIC": DEAD_LETTER_TOPIC,
        "TIDELINE_BACKGROUND": "true",  # each process's relay thread and scheduler
        "RELAY_SWEEP_SECONDS": "0.5",
        "OUTBOX_BACKOFF_BASE_SECONDS": "0.2",
        "OUTBOX_BACKOFF_MAX_SECONDS": "1",
        "EVENT_MAX_ATTEMPTS": str(EVENT_MAX_ATTEMPTS),  # then to the dead-letter topic
        "EVENT_RETRY_BASE_SECONDS": str(EVENT_RETRY_BASE_SECONDS),  # the app's own retries
        "EVENT_RETRY_MAX_SECONDS": "10",
        "REMINDER_SWEEP_SCHEDULE": "@every 2s",  # races the reminder jobs: still one e-mail
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": smtp.host,
        "EMAIL_PORT": str(smtp.port),
        "EMAIL_TIMEOUT": "5",
        "DEFAULT_FROM_EMAIL": "Tideline <reminders@tideline.example.com>",
    }


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    require_service("Redis", "127.0.0.1", 6379)
    database = postgres_url()
    workdir = tmp_path_factory.mktemp("topology")
    broker_url = (
        f"redis://127.0.0.1:6379/12?keyPrefix=topology-{uuid.uuid4().hex[:12]}-"
        "&processingTimeout=3s&redeliverInterval=500ms"
    )
    smtp = LoopbackSmtp().start()
    nodes: list[Node] = []
    with scratch_postgres_database(database, "tideline_topology_") as database_url:
        shared = app_environment(database_url, smtp, workdir)
        manage(shared, "migrate", "--noinput", "-v0")
        try:
            for role, consumers in (
                ("web", "web"),
                ("notifications", "notifications"),
                ("recurrence", "recurrence"),
            ):
                app = AppProcess(role, {}, workdir / f"{role}.log")
                sidecar = FakeDaprSidecar(
                    app.url,
                    app_id=role,
                    runtime_version="1.18",
                    api_token=f"{role}-dapr-token-1",
                    app_token=f"{role}-app-token-1",
                    auto_deliver=True,
                    fire_jobs=True,
                    retry_policy=RetryPolicy(max_retries=-1, interval=1.0, max_interval=2.0),
                    job_retry_interval=0.2,
                    broker=RedisStreamsBroker(broker_url),
                ).start()
                app.env = {
                    **shared,
                    "DAPR_APP_ID": role,
                    "EVENT_CONSUMERS": consumers,
                    "DAPR_HTTP_PORT": str(sidecar.port),
                    "DAPR_API_TOKEN": sidecar.api_token,
                    "APP_API_TOKEN": sidecar.app_token,
                    "TIDELINE_VAR_DIR": str(workdir / role),
                    "SITE_URL": "",  # set below, once web's port is known
                }
                nodes.append(Node(role, app, sidecar))
            web, notifications, recurrence = nodes
            for node in nodes:
                node.app.env["SITE_URL"] = web.app.url
                node.app.start(wait=False)
            for node in nodes:
                node.app.wait_until_healthy()
            world = Topology(web, notifications, recurrence, RedisStreamsBroker(broker_url), smtp)
            sign_up(world)
            yield world
        finally:
            for node in nodes:
                node.app.stop()
            for node in nodes:
                node.sidecar.stop()
            cleanup = RedisStreamsBroker(broker_url)
            cleanup.purge()
            cleanup.close()
            smtp.stop()
            errors = [e for node in nodes for e in node.sidecar.errors]
            assert errors == [], errors


def sign_up(world: Topology) -> None:
    user = {"username": "ada", "email": "ada@example.com", "password": "analytical-engine-1843"}
    assert world.call("POST", "/auth/register/", json=user).status_code == 201
    token = world.call("POST", "/auth/token/", json=user).json()["token"]
    world.api.headers["Authorization"] = f"Token {token}"


def reminder_job(task_id: int) -> str:
    return f"reminder-task-{task_id}"


# --------------------------------------------------------------------------- the journeys


def test_a_task_created_on_web_is_reminded_by_notifications_and_repeated_by_recurrence(
    topology: Topology,
) -> None:
    web, notifications, recurrence = topology.web, topology.notifications, topology.recurrence
    due = in_seconds(3600)
    task_id = topology.create_task(
        "Water the plants",
        due_date=iso(due),
        remind_at=iso(in_seconds(4)),
        recurrence_type="daily",
    )

    # The reminder job is scheduled by notifications, with its own sidecar, and no one else.
    job = reminder_job(task_id)
    topology.wait_until("the reminder job is scheduled", lambda: job in notifications.job_names())
    assert job not in web.job_names() | recurrence.job_names()

    # At its time the Scheduler calls notifications back, and one e-mail arrives.
    topology.wait_until(
        "the reminder job is called back", lambda: 200 in notifications.triggered(job)
    )
    [email] = topology.wait_until(
        "the reminder e-mail arrives", lambda: topology.emails_for(task_id)
    )
    assert email.rcpt_tos == ["ada@example.com"]
    assert web.triggered(job) == [] and recurrence.triggered(job) == []

    # Completing it on web spawns the next instance, through recurrence only.
    assert topology.call("POST", f"/tasks/{task_id}/complete/").status_code == 200

    def next_instance() -> dict | None:
        tasks = topology.call("GET", "/tasks/", params={"completed": "false"}).json()
        rows = tasks["results"] if isinstance(tasks, dict) else tasks
        return next((t for t in rows if t["parent"] == task_id), None)

    following = topology.wait_until("recurrence spawns the next instance", next_instance)
    assert dt.datetime.fromisoformat(following["due_date"]) == due + dt.timedelta(days=1)
    spawned = [
        d
        for d in recurrence.sidecar.deliveries
        if d.topic == "task-recurrence" and d.outcome == SUCCESS
    ]
    assert spawned, "recurrence consumed the task-recurrence event"
    assert not [d for d in notifications.sidecar.deliveries if d.topic == "task-recurrence"]
    # web follows task-updates (its open pages' live log), and nothing else.
    topology.wait_until(
        "web's live-updates consumer hears the completion",
        lambda: any(
            d.topic == "task-updates" and d.outcome == SUCCESS for d in web.sidecar.deliveries
        ),
    )
    assert {d.topic for d in web.sidecar.deliveries} == {"task-updates"}

    # The new instance gets its own reminder job, on notifications.
    following_job = reminder_job(following["id"])
    topology.wait_until(
        "the next instance's reminder job is scheduled",
        lambda: following_job in notifications.job_names(),
    )
    assert notifications.sidecar.jobs[following_job]["dueTime"] == following["remind_at"].replace(
        "+00:00", "Z"
    )
    time.sleep(3)  # the sweep (every 2 s) has looked at the sent reminder since
    assert len(topology.emails_for(task_id)) == 1  # once, job and sweep notwithstanding


def test_a_poison_event_never_holds_back_the_others_and_is_dead_lettered_after_the_budget(
    topology: Topology,
) -> None:
    notifications = topology.notifications
    poison = publish_poison_reminder(
        topology.web.sidecar.url, topology.web.sidecar.api_token, pubsub=PUBSUB, source="web"
    )
    poison_id = poison["id"]
    # Another task's reminder, on the same topic and partition, due while the app is still
    # retrying the poison (about 9 s).
    task_id = topology.create_task(
        "Call the plumber", due_date=iso(in_seconds(3600)), remind_at=iso(in_seconds(1.5))
    )

    def poison_dead_letters() -> list[tuple[str, dict]]:
        return [
            (entry_id, fields)
            for entry_id, fields in topology.broker.entries(DEAD_LETTER_TOPIC)
            if json.loads(fields["data"])["id"] == poison_id
        ]

    topology.wait_until("the other task's reminder arrives", lambda: topology.emails_for(task_id))
    assert poison_dead_letters() == []  # the poison is still being retried meanwhile

    [(entry_id, fields)] = topology.wait_until(
        "the poison event reaches the dead-letter topic", poison_dead_letters
    )
    dead_lettered_at = int(entry_id.split("-")[0]) / 1000  # a stream id starts with its ms time
    dead = json.loads(fields["data"])
    assert (dead["type"], dead["data"]) == (poison["type"], poison["data"])

    # The sidecar delivered the poison once and the app acknowledged it: the partition never
    # waited. The app made the attempts itself, EVENT_MAX_ATTEMPTS in all.
    attempts = [d for d in notifications.sidecar.deliveries if d.event_id == poison_id]
    assert [d.outcome for d in attempts] == [SUCCESS]
    log = notifications.app.log_path.read_text()
    assert log.count(f"event held for a retry event_id={poison_id} ") == EVENT_MAX_ATTEMPTS - 1
    assert (
        f"event dead-lettered (no attempts left) event_id={poison_id} type=reminder.due"
        " topic=task-reminders consumer=notifications.reminder-email"
        f" attempts={EVENT_MAX_ATTEMPTS}/{EVENT_MAX_ATTEMPTS} "
    ) in log

    # The other task's reminder.due was delivered while the poison was still held.
    [(_, reminder)] = [
        (entry_id, fields)
        for entry_id, fields in topology.broker.entries("task-reminders")
        if json.loads(fields["data"])["data"]["task_id"] == task_id
    ]
    waiting_id = json.loads(reminder["data"])["id"]
    [delivered] = [
        d
        for d in notifications.sidecar.deliveries
        if d.event_id == waiting_id and d.outcome == SUCCESS
    ]
    assert attempts[0].at < delivered.at < dead_lettered_at
    time.sleep(1)
    assert len(topology.emails_for(task_id)) == 1


def test_a_sidecar_restart_loses_nothing(topology: Topology) -> None:
    notifications = topology.notifications
    notifications.sidecar.stop()
    try:
        task_id = topology.create_task(
            "Renew the passport", due_date=iso(in_seconds(3600)), remind_at=iso(in_seconds(2))
        )
        job = reminder_job(task_id)
        topology.wait_until(
            "task.created waits in notifications' consumer group",
            lambda: topology.broker.backlog("notifications", "task-events") > 0,
        )
        time.sleep(3)  # the reminder time passes while the sidecar is down
        assert job not in notifications.job_names()
        assert topology.emails_for(task_id) == []
    finally:
        notifications.sidecar.start()

    topology.wait_until(
        "the reminder job is scheduled after the restart", lambda: job in notifications.job_names()
    )
    topology.wait_until("the late reminder e-mail arrives", lambda: topology.emails_for(task_id))
    time.sleep(2)
    assert len(topology.emails_for(task_id)) == 1


def test_a_token_rotation_loses_nothing(topology: Topology) -> None:
    notifications, web = topology.notifications, topology.web

    # The sidecar -> app token changes first: notifications refuses the sidecar's calls (401)
    # and the sidecar keeps redelivering until the app restarts with the new token.
    notifications.sidecar.app_token = "notifications-app-token-2"
    task_id = topology.create_task(
        "Pay the rent", due_date=iso(in_seconds(3600)), remind_at=iso(in_seconds(3))
    )
    topology.wait_until(
        "notifications refuses the sidecar with the old token",
        lambda: [d for d in notifications.sidecar.deliveries if d.http_status == 401],
    )
    notifications.app.restart(APP_API_TOKEN="notifications-app-token-2")
    topology.wait_until(
        "the reminder job is scheduled after the restart",
        lambda: reminder_job(task_id) in notifications.job_names(),
    )
    topology.wait_until("the reminder e-mail arrives", lambda: topology.emails_for(task_id))

    # Then web's app -> sidecar token: its sidecar refuses web's publishes (401) until web
    # restarts with the new token; the events wait in the outbox meanwhile.
    web.sidecar.api_token = "web-dapr-token-2"
    second = topology.create_task(
        "Book the dentist", due_date=iso(in_seconds(3600)), remind_at=iso(in_seconds(3))
    )
    time.sleep(1)
    web.app.restart(DAPR_API_TOKEN="web-dapr-token-2")
    third = topology.create_task(
        "Return the library books", due_date=iso(in_seconds(3600)), remind_at=iso(in_seconds(3))
    )
    for task in (second, third):
        topology.wait_until(
            f"task {task}'s reminder e-mail arrives",
            lambda task=task: topology.emails_for(task),
        )
    assert [len(topology.emails_for(t)) for t in (task_id, second, third)] == [1, 1, 1]
    ready = requests.get(f"{web.app.url}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
