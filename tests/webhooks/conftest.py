"""Fixtures for the webhook tests: a real receiver on loopback that checks signatures.

* ``webhooks_world`` (autouse) builds on the events tests' ``events_world`` (embedded, no
  Dapr, no broker, e-mail in memory) with the app's own consumers on, plain http:// allowed
  and the operator allow-list admitting loopback, so the receiver can be reached. The SSRF
  tests take loopback off the list again.
* ``receiver``: an HTTP server on 127.0.0.1 in a thread. It verifies each request with
  ``standardwebhooks.Webhook(secret).verify`` (a 400 when that fails), keeps every request,
  and answers from a script (``receiver.answer(500, ...)``), else 204.

Events are delivered by ``relay_pending()`` (in-process, as the embedded default does);
nothing starts the background worker.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.events.conftest import events_world  # noqa: F401  (reused)

LOOPBACK = ["127.0.0.0/8"]


@pytest.fixture(autouse=True)
def webhooks_world(request, settings):
    request.getfixturevalue("events_world")
    settings.EVENT_CONSUMERS = ["all"]
    settings.SITE_URL = "https://tideline.example.com"
    settings.DEFAULT_FROM_EMAIL = "Tideline <noreply@tideline.example.com>"
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0
    settings.WEBHOOK_RESPONSE_MAX_BYTES = 64
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30.0
    settings.WEBHOOK_RETRY_MAX_SECONDS = 3600.0
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_SENDING_LEASE_SECONDS = 300
    settings.WEBHOOK_MAX_ENDPOINTS = 10
    return settings


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it, and whether its signature verified."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    trickle: float = 0.0  # seconds between the bytes of the answer: a slow-drip receiver


class Receiver:
    """A webhook receiver on loopback that does what a careful consumer does."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.scheme = "https" if tls else "http"
        self.secret: str | None = None
        self.requests: list[Received] = []
        self.on_request = None  # called (in the server's thread) before each answer
        self._script: list[Answer] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified, error = receiver.verify(body, headers)
                with receiver._lock:
                    receiver.requests.append(Received(self.path, headers, body, verified, error))
                    answer = receiver._script.pop(0) if receiver._script else Answer(204)
                if not verified and receiver.secret is not None:
                    answer = Answer(400, body=error.encode())
                if receiver.on_request is not None:
                    receiver.on_request()
                time.sleep(answer.delay)
                try:
                    if answer.trickle:
                        raw = f"HTTP/1.1 {answer.status} OK\r\nX-Padding: {'x' * 60}\r\n\r\n"
                        for byte in raw.encode():
                            self.wfile.write(bytes([byte]))
                            time.sleep(answer.trickle)
                        return
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout) or read no further (the size cap)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def verify(self, body: bytes, headers: dict[str, str]) -> tuple[bool, str]:
        if self.secret is None:
            return False, "no secret to verify with"
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            return False, str(exc)
        return True, ""

    def answer(
        self,
        status: int,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        delay: float = 0.0,
        trickle: float = 0.0,
    ) -> None:
        """The next request gets this answer, after ``delay`` seconds, at ``trickle``
        seconds a byte when given (answers queue up)."""
        self._script.append(Answer(status, headers or {}, body, delay, trickle))

    @property
    def events(self) -> list[dict]:
        """The verified payloads, in arrival order."""
        return [r.json for r in self.requests if r.verified]

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    """A second receiver: where a redirect points, to see nothing arrives."""
    server = Receiver()
    try:
        yield server
    finally:
        server.stop()
