"""Fixtures for the reminder tests: a real SMTP server on loopback, real HTTP to the app.

* ``smtp`` (autouse): an aiosmtpd server on a free loopback port that keeps every message it
  accepted; Django's SMTP backend points at it. ``smtp.fail()`` answers DATA with a 451 (the
  rejected messages are kept too), ``smtp.stop()`` / ``smtp.start()`` take it down and bring
  it back on the same port.
* ``dapr``: the stand-in sidecar (tests/support/fake_dapr.py) with API tokens both ways,
  calling the app served by ``live_server``. ``dapr.pump()`` runs the relay
  (``relay_pending()``) and has the sidecar deliver what was published, synchronously, until
  nothing new comes out — what daprd and the broker would do, one step at a time.
* ``reminders_world`` (autouse) builds on the events tests' ``events_world`` and pins what
  these tests rely on (the app's own consumers on, reminder settings), so a change there
  cannot silently change what is tested here. ``sidecar`` (no tokens, delivers only when
  asked) and ``job_calls`` are the events tests' fixtures, reused.

No test starts the background worker: the relay and the schedulers are driven explicitly.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
import requests
from aiosmtpd.controller import Controller

from events.relay import relay_pending
from tests.events.conftest import events_world, job_calls, sidecar  # noqa: F401  (reused)
from tests.events.helpers import start_sidecar
from tests.notifications.helpers import APP_API_TOKEN, DAPR_API_TOKEN, SITE_URL
from tests.support.fake_dapr import FakeDaprSidecar, RetryPolicy

FAIL_REPLY = "451 4.3.0 Mail server temporarily unavailable"


# --------------------------------------------------------------------------- settings


@pytest.fixture(autouse=True)
def reminders_world(request, settings):
    """The events tests' world (embedded, no Dapr, no broker), with the app's own consumers
    on, and known reminder settings. What these tests rely on is pinned here, so a change of
    the events fixture cannot silently change what is tested."""
    request.getfixturevalue("events_world")
    settings.CELERY_BROKER_URL = ""
    settings.TIDELINE_BACKGROUND = False
    settings.DAPR_ENABLED = False
    settings.DAPR_API_TOKEN = ""
    settings.APP_API_TOKEN = ""
    settings.DAPR_PUBSUB_NAME = "pubsub-kafka"
    settings.DAPR_STATESTORE_NAME = "statestore-postgres"
    settings.EVENT_CONSUMERS = ["all"]  # the notification (and recurrence) consumers
    settings.EVENT_TOPICS = {
        "task_events": "task-events",
        "task_updates": "task-updates",
        "task_recurrence": "task-recurrence",
        "task_reminders": "task-reminders",
    }
    settings.OUTBOX_BATCH_SIZE = 100
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 1.0
    settings.SITE_URL = SITE_URL
    settings.DEFAULT_FROM_EMAIL = "Tideline <reminders@tideline.example.com>"
    settings.DAPR_JOBS_API_PREFIX = "v1.0"
    settings.REMINDER_SWEEP_SCHEDULE = "@every 1m"
    settings.REMINDER_MISSED_AFTER_MINUTES = 60
    settings.REMINDER_MAX_ATTEMPTS = 5
    settings.REMINDER_RETRY_BASE_SECONDS = 30.0
    settings.REMINDER_SENDING_LEASE_SECONDS = 600
    settings.REMINDER_STATE_TTL_SECONDS = 86400
    return settings


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class Received:
    """One message as the SMTP server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return part.get_content().replace("\r\n", "\n")  # SMTP lines end in CRLF
        raise AssertionError(f"no {content_type} part in {self.message.get_content_type()}")

    @property
    def text(self) -> str:
        return self.part("text/plain")

    @property
    def html(self) -> str:
        return self.part("text/html")


class SmtpSink:
    """The aiosmtpd handler: keeps accepted messages, or answers DATA with ``fail_with``."""

    def __init__(self) -> None:
        self.accepted: list[Received] = []
        self.rejected: list[Received] = []
        self.fail_with: str | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            message=email.message_from_bytes(envelope.content, policy=email.policy.default),
        )
        with self._lock:
            if self.fail_with:
                self.rejected.append(received)
                return self.fail_with
            self.accepted.append(received)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackSmtp:
    """A real SMTP server on 127.0.0.1 that can fail (451) or go down and come back."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.sink = SmtpSink()
        self._controller: Controller | None = None

    def start(self) -> LoopbackSmtp:
        if self._controller is None:
            self._controller = Controller(self.sink, hostname=self.host, port=self.port)
            self._controller.start()
        return self

    def stop(self) -> None:
        """Down: connections to the port are refused until start()."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def fail(self, reply: str = FAIL_REPLY) -> None:
        self.sink.fail_with = reply

    def recover(self) -> None:
        self.sink.fail_with = None

    @property
    def messages(self) -> list[Received]:
        return list(self.sink.accepted)

    @property
    def rejected(self) -> list[Received]:
        return list(self.sink.rejected)

    def only_message(self) -> Received:
        messages = self.messages
        assert len(messages) == 1, [m.subject for m in messages]
        return messages[0]


@pytest.fixture(autouse=True)
def smtp(reminders_world) -> Iterator[LoopbackSmtp]:
    """Every test sends its e-mail over SMTP to this loopback server, nowhere else."""
    server = LoopbackSmtp().start()
    reminders_world.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    reminders_world.EMAIL_HOST = server.host
    reminders_world.EMAIL_PORT = server.port
    reminders_world.EMAIL_HOST_USER = ""
    reminders_world.EMAIL_HOST_PASSWORD = ""
    reminders_world.EMAIL_USE_TLS = False
    reminders_world.EMAIL_USE_SSL = False
    reminders_world.EMAIL_TIMEOUT = 5
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- Dapr


class DaprWorld:
    """The stand-in sidecar in front of the app under ``live_server``, with helpers."""

    def __init__(self, fake: FakeDaprSidecar, app_url: str) -> None:
        self.sidecar = fake
        self.app_url = app_url
        self._handed = 0  # published events already handed to the app

    # -- events -----------------------------------------------------------------------------

    def pump(self, rounds: int = 10) -> list[tuple[str, str, str]]:
        """Relay the outbox, have the sidecar deliver each new event to the app (redelivered
        per the fixture's retry policy, then dead-lettered), and repeat while the app's
        handlers publish more.

        Returns (topic, CloudEvent type, outcome) of every delivery made."""
        outcomes = []
        for _ in range(rounds):
            relay_pending()
            with self.sidecar._lock:
                fresh = self.sidecar.published[self._handed :]
                self._handed = len(self.sidecar.published)
            if not fresh:
                return outcomes
            for item in fresh:
                if item.dead_letter or self.sidecar.find_subscription(item.topic) is None:
                    continue  # nobody subscribes (e.g. task-updates here): daprd delivers nothing
                outcome = self.sidecar.deliver_with_redelivery(
                    item.topic,
                    item.event,
                    item.pubsub,
                    metadata={"__key": item.query.get("metadata.partitionKey", "")},
                )
                outcomes.append((item.topic, item.event["type"], outcome))
        raise AssertionError(f"events still flowing after {rounds} rounds")

    def events(self, topic: str) -> list[dict]:
        return self.sidecar.events(topic)

    # -- jobs -------------------------------------------------------------------------------

    def job(self, name: str) -> dict | None:
        return self.sidecar.jobs.get(name)

    def job_calls(self, name: str | None = None) -> list[tuple[str, str, dict | None]]:
        return [entry for entry in self.sidecar.job_log if name is None or entry[1] == name]

    def schedules(self, name: str) -> list[dict]:
        return [req for op, _, req in self.job_calls(name) if op == "schedule"]

    def deletes(self, name: str) -> int:
        return sum(op == "delete" for op, _, _ in self.job_calls(name))

    def trigger(self, name: str) -> int:
        """The sidecar fires the job now: ``POST /job/<name>`` with the job's data."""
        return self.sidecar.trigger_job(name)

    def post_job(self, name: str, data: dict, *, token: str | None = APP_API_TOKEN) -> int:
        """A job callback as daprd sends it (e.g. an at-least-once repeat, or a stale one)."""
        headers = {"dapr-api-token": token} if token is not None else {}
        response = requests.post(
            f"{self.app_url}/job/{name}", json=data, headers=headers, timeout=10
        )
        return response.status_code

    # -- state ------------------------------------------------------------------------------

    def state(self) -> dict:
        return self.sidecar.state("statestore-postgres")


@pytest.fixture
def dapr(reminders_world, live_server) -> Iterator[DaprWorld]:
    """DAPR_ENABLED with the stand-in sidecar on a free port; tokens checked both ways; an
    event not acknowledged is redelivered 5 times, 20 ms apart, then dead-lettered."""
    fake = start_sidecar(
        reminders_world,
        app_url=live_server.url,
        api_token=DAPR_API_TOKEN,
        app_token=APP_API_TOKEN,
        retry_policy=RetryPolicy(max_retries=5, interval=0.02),
    )
    try:
        yield DaprWorld(fake, live_server.url)
    finally:
        fake.stop()
        assert not fake.errors, fake.errors
