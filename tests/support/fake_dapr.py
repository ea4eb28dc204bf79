"""A stand-in Dapr sidecar (daprd 1.14-1.18, HTTP API) for integration tests only.

``daprd`` cannot be installed on the test machines, so integration tests run this small
loopback HTTP server in its place. It follows /work/shared/docs/dapr-protocol-notes.md:

* app -> sidecar: publish (single and bulk), state (save/get/delete/transaction/bulk get),
  jobs (schedule/get/delete), health and metadata, with ``dapr-api-token`` checks;
* sidecar -> app: ``GET /dapr/subscribe`` discovery, CloudEvent delivery with route rules
  and daprd's reading of the app's answer, redelivery, dead-letter topics, and job triggers.

Everything is kept in memory and exposed for assertions (``published``, ``deliveries``,
``state(store)``, ``jobs``, ``job_log``). Never import this module from application code.
"""

from __future__ import annotations

import base64
import copy
import hmac
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import requests

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE",
    "DROP",
    "ERROR",
    "RETRY",
    "SUCCESS",
    "Delivery",
    "FakeDaprSidecar",
    "PublishedEvent",
    "interpret_app_response",
]

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
SUCCESS = "SUCCESS"
RETRY = "RETRY"
DROP = "DROP"
ERROR = "ERROR"

_HEALTH_PATHS = ("/v1.0/healthz", "/v1.0/healthz/outbound")
_JOB_PREFIXES = ("/v1.0/jobs/", "/v1.0-alpha1/jobs/")
_BAD_JOB_NAME = re.compile(r"[/\\#?\x00\r\n]")
_CEL_EQUALS = re.compile(
    r"""^event\.([A-Za-z_][A-Za-z0-9_]*)\s*==\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')$"""
)
_TEXT_CONTENT_TYPES = ("text/", "application/xml")
logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- records


class _Headers(dict):
    """A dict of HTTP headers with case-insensitive lookups (keys are stored lower-case)."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        pairs = items.items() if hasattr(items, "items") else items
        for key, value in pairs:
            super().__setitem__(str(key).lower(), value)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.lower())

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key.lower(), value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class PublishedEvent:
    """One message accepted by the sidecar (what the broker now holds)."""

    pubsub: str
    topic: str
    event: Any  # the CloudEvent dict as Dapr would deliver it (raw payload with rawPayload=true)
    headers: dict[str, str]  # request headers, case-insensitive lookups
    query: dict[str, str]  # e.g. {"metadata.partitionKey": "42"}
    raw_content_type: str
    offset: int = 0  # per-topic broker offset, sent to the app as the ``__offset`` header
    dead_letter: bool = False  # True when daprd put it there after a DROP / exhausted retries


@dataclass
class Delivery:
    """One attempt to deliver an event to the app."""

    topic: str
    event_id: str | None
    path: str  # "" when no route matched
    http_status: int  # 0 when the app could not be reached / nothing was sent
    outcome: str  # SUCCESS | RETRY | DROP | ERROR
    pubsub: str = ""


@dataclass
class _StateItem:
    value: Any
    etag: str
    expires_at: float | None = None  # wall-clock seconds (sidecar clock)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class _DaprError(Exception):
    """An error answered the way daprd does: ``{"errorCode": ..., "message": ...}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> _Response:
        body = {"errorCode": self.code, "message": self.message, **self.extra}
        return _json_response(self.status, body)


def _json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Response:
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    return _Response(status, json.dumps(obj).encode(), hdrs)


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json_media(media: str) -> bool:
    return media in ("application/json", "text/json") or media.endswith("+json")


def interpret_app_response(status: int, body: bytes) -> str:
    """Read the app's answer to a pub/sub delivery exactly as daprd's HTTP channel does.

    2xx: the body is decoded into ``{"status": ...}`` with Go's encoding/json (first JSON value,
    case-insensitive key match). An empty or undecodable body, a non-object, a non-string status,
    a null / empty status or ``SUCCESS`` -> SUCCESS; ``RETRY`` or any other string -> RETRY
    (redelivered); ``DROP`` -> DROP. Non-2xx: 404 -> DROP (acked, not dead-lettered); anything
    else -> ERROR (redelivered per the resiliency policy).
    """
    if 200 <= status <= 299:
        text = body.decode("utf-8", "replace").strip()
        if not text:
            return SUCCESS
        try:
            obj, _ = json.JSONDecoder().raw_decode(text)
        except ValueError:
            return SUCCESS
        if not isinstance(obj, dict):
            return SUCCESS
        value: Any = None
        for key, val in obj.items():
            if key.lower() == "status":
                value = val
        if value is None or value in ("", SUCCESS):
            return SUCCESS
        if not isinstance(value, str):
            return SUCCESS  # json: cannot unmarshal ... -> daprd skips the status check
        if value == DROP:
            return DROP
        return RETRY  # RETRY, or an unknown status string
    if status == 404:
        return DROP
    return ERROR


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    sidecar: FakeDaprSidecar

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: stop() really cuts clients off

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        resp = self.server.sidecar._handle(method, self.path, _Headers(self.headers.items()), body)
        try:
            self.send_response(resp.status)
            for key, value in resp.headers.items():
                self.send_header(key, value)
            if resp.status != 204:
                self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if resp.status != 204 and resp.body:
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            pass


# --------------------------------------------------------------------------- the sidecar


class FakeDaprSidecar:
    """In-memory daprd look-alike on loopback. See the module docstring.

    ``api_token``: the token the app must send (``dapr-api-token``); None = not checked.
    ``app_token``: the token this sidecar sends to the app on every call.
    ``auto_deliver``: deliver each accepted publish to the app's subscribed route on one
    background FIFO thread (with redelivery); ``drain()`` waits for that queue to empty.
    """

    def __init__(
        self,
        app_url: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_token: str | None = None,
        app_token: str | None = None,
        auto_deliver: bool = False,
        max_redeliveries: int = 5,
        redelivery_delay: float = 0.05,
        pubsub_names: tuple[str, ...] | list[str] = ("pubsub-kafka",),
        state_stores: tuple[str, ...] | list[str] = ("statestore-postgres",),
        app_id: str = "tideline",
        request_timeout: float = 10.0,
    ) -> None:
        self.app_url = app_url.rstrip("/") if app_url else None
        self.host = host
        self.port = port
        self.api_token = api_token
        self.app_token = app_token
        self.auto_deliver = auto_deliver
        self.max_redeliveries = max_redeliveries
        self.redelivery_delay = redelivery_delay
        self.pubsub_names = tuple(pubsub_names)
        self.state_stores = tuple(state_stores)
        self.app_id = app_id
        self.request_timeout = request_timeout

        self._lock = threading.RLock()
        self._queue_cond = threading.Condition(self._lock)
        self.published: list[PublishedEvent] = []
        self.deliveries: list[Delivery] = []
        self.jobs: dict[str, dict] = {}
        self.job_log: list[tuple[str, str, dict | None]] = []
        self.job_triggers: list[tuple[str, int]] = []
        self.errors: list[str] = []  # unexpected problems (handler bugs, background failures)

        self._stores: dict[str, dict[str, _StateItem]] = {s: {} for s in self.state_stores}
        self._etag_seq = 0
        self._clock_offset = 0.0
        self._offsets: dict[tuple[str, str], int] = {}
        self._fail_queue: deque[tuple[int, dict | None]] = deque()
        self._rejected: dict[str, int] = {}
        self._subscriptions: list[dict] | None = None
        self._job_runs: dict[str, int] = {}

        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._queue: deque[PublishedEvent] = deque()
        self._worker: threading.Thread | None = None
        self._worker_stop = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL of the sidecar, e.g. ``http://127.0.0.1:43121`` (valid after start())."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        """Bind and serve. After stop(), binds the SAME port again (outage recovery)."""
        with self._lock:
            if self._server is not None:
                return self
            server = _Server((self.host, self.port), _Handler)
            server.sidecar = self
            self.port = server.server_address[1]
            self._server = server
        self._serve_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-dapr-{self.port}",
            daemon=True,
        )
        self._serve_thread.start()
        if self.auto_deliver:
            self._worker_stop.clear()
            self._worker = threading.Thread(
                target=self._delivery_loop, name=f"fake-dapr-delivery-{self.port}", daemon=True
            )
            self._worker.start()
        return self

    def stop(self) -> None:
        """Stop serving: the port refuses connections until start() is called again.

        Accepted-but-undelivered events stay queued and are delivered after a restart.
        """
        with self._lock:
            server, self._server = self._server, None
        if server is None:
            return
        self._worker_stop.set()
        with self._queue_cond:
            self._queue_cond.notify_all()
        server.shutdown()
        server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
            self._serve_thread = None
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def advance_clock(self, seconds: float) -> None:
        """Move the sidecar's clock forward (state TTLs) without sleeping."""
        with self._lock:
            self._clock_offset += seconds

    def _now(self) -> float:
        return time.time() + self._clock_offset

    # ------------------------------------------------------------------ publishing helpers

    def events(self, topic: str | None = None) -> list[dict]:
        """The CloudEvents published (optionally for one topic), in arrival order."""
        with self._lock:
            return [p.event for p in self.published if topic is None or p.topic == topic]

    def fail_publishes(self, count: int, status: int = 500, body: dict | None = None) -> None:
        """Answer the next ``count`` publish calls (single or bulk) with ``status``.

        Nothing is recorded for those calls."""
        with self._lock:
            for _ in range(count):
                self._fail_queue.append((status, body))

    def reject_topic(self, topic: str, status: int = 400) -> None:
        """Answer every publish to ``topic`` with ``status`` from now on."""
        with self._lock:
            self._rejected[topic] = status

    def accept_topic(self, topic: str) -> None:
        """Undo reject_topic()."""
        with self._lock:
            self._rejected.pop(topic, None)

    def wait_for_events(
        self, count: int, topic: str | None = None, timeout: float = 5.0
    ) -> list[dict]:
        """Poll until at least ``count`` events are recorded, else AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(topic)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                where = f" on topic {topic!r}" if topic else ""
                raise AssertionError(
                    f"expected at least {count} published events{where}, got {len(found)}"
                )
            time.sleep(0.01)

    def wait_for_deliveries(
        self, count: int, topic: str | None = None, timeout: float = 5.0
    ) -> list[Delivery]:
        """Poll until at least ``count`` delivery attempts are recorded, else AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [d for d in self.deliveries if topic is None or d.topic == topic]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} deliveries, got {len(found)}")
            time.sleep(0.01)

    # ------------------------------------------------------------------ state helpers

    def state(self, store: str = "statestore-postgres") -> dict[str, Any]:
        """Live (unexpired) entries of ``store``: key (as the app gave it) -> value."""
        with self._lock:
            now = self._now()
            return {k: v.value for k, v in self._stores[store].items() if not v.expired(now)}

    def etag(self, store: str, key: str) -> str | None:
        """Current ETag of a key, or None."""
        with self._lock:
            item = self._stores[store].get(key)
            return None if item is None or item.expired(self._now()) else item.etag

    # ------------------------------------------------------------------ delivery to the app

    def _app_headers(self) -> dict[str, str]:
        return {"dapr-api-token": self.app_token} if self.app_token else {}

    def _require_app(self) -> str:
        if not self.app_url:
            raise RuntimeError("FakeDaprSidecar has no app_url")
        return self.app_url

    def subscriptions(self, refresh: bool = False) -> list[dict]:
        """``GET {app_url}/dapr/subscribe`` (cached until refresh=True), normalised to
        ``{"pubsubname", "topic", "routes": {"rules": [{"match", "path"}], "default"},
        "deadLetterTopic", "metadata", ...}``; the old ``"route"`` form becomes routes.default.
        """
        with self._lock:
            if self._subscriptions is not None and not refresh:
                return copy.deepcopy(self._subscriptions)
        resp = requests.get(
            self._require_app() + "/dapr/subscribe",
            headers=self._app_headers(),
            timeout=self.request_timeout,
        )
        if resp.status_code == 404:
            raw: Any = []
        elif 200 <= resp.status_code <= 299:
            raw = resp.json() if resp.content.strip() else []
        else:
            raise RuntimeError(f"GET /dapr/subscribe answered {resp.status_code}")
        subs = [self._normalise_subscription(s) for s in raw or []]
        with self._lock:
            self._subscriptions = subs
            return copy.deepcopy(subs)

    @staticmethod
    def _normalise_subscription(sub: dict) -> dict:
        out = dict(sub)
        routes = sub.get("routes") or {}
        rules = [
            {"match": r.get("match") or "", "path": r.get("path") or ""}
            for r in routes.get("rules") or []
        ]
        out["routes"] = {"rules": rules, "default": routes.get("default") or sub.get("route")}
        out.pop("route", None)
        out.setdefault("deadLetterTopic", None)
        out.setdefault("metadata", {})
        return out

    def _find_subscription(self, topic: str, pubsub: str | None) -> dict | None:
        for sub in self.subscriptions():
            if sub.get("topic") == topic and (pubsub is None or sub.get("pubsubname") == pubsub):
                return sub
        return None

    @staticmethod
    def _matches(expr: str, event: dict) -> bool:
        expr = expr.strip()
        if not expr:
            return True
        m = _CEL_EQUALS.match(expr)
        if not m:
            raise ValueError(f'fake dapr only understands `event.<attr> == "x"`, got {expr!r}')
        attr, dq, sq = m.groups()
        expected = json.loads(f'"{dq}"') if dq is not None else sq.replace("\\'", "'")
        return event.get(attr) == expected

    def route_for(self, sub: dict, event: dict) -> str | None:
        """The path daprd would POST ``event`` to for ``sub`` (rules in order, then default)."""
        for rule in sub["routes"]["rules"]:
            if self._matches(rule.get("match", ""), event):
                return rule["path"]
        return sub["routes"].get("default")

    def deliver(
        self,
        topic: str,
        event: dict,
        pubsub: str | None = None,
        *,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Deliver one CloudEvent to the app the way daprd does and return the outcome.

        ``metadata`` becomes extra request headers (broker metadata such as ``__key``).
        Raises LookupError when the app has no subscription for the topic.
        """
        app_url = self._require_app()
        sub = self._find_subscription(topic, pubsub)
        if sub is None:
            raise LookupError(f"the app has no subscription for topic {topic!r} ({pubsub})")
        ev = copy.deepcopy(event)
        ev["topic"] = topic
        ev["pubsubname"] = sub["pubsubname"]
        event_id = ev.get("id")
        path = self.route_for(sub, ev)
        if not path:
            self._record_delivery(Delivery(topic, event_id, "", 0, DROP, sub["pubsubname"]))
            return DROP
        if not path.startswith("/"):
            path = "/" + path
        headers = {
            "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
            "traceparent": str(ev.get("traceparent") or _new_traceparent()),
        }
        for key, value in (metadata or {}).items():
            headers[key] = str(value)
        headers.update(self._app_headers())
        try:
            resp = requests.post(
                app_url + path,
                data=json.dumps(ev).encode(),
                headers=headers,
                timeout=self.request_timeout,
            )
        except requests.RequestException:
            status, outcome = 0, ERROR
        else:
            status = resp.status_code
            outcome = interpret_app_response(status, resp.content)
        self._record_delivery(Delivery(topic, event_id, path, status, outcome, sub["pubsubname"]))
        if outcome == DROP and status != 404:
            self._dead_letter(sub, ev)
        return outcome

    def deliver_with_redelivery(
        self,
        topic: str,
        event: dict,
        pubsub: str | None = None,
        *,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """deliver(), redelivering RETRY/ERROR up to ``max_redeliveries`` times,
        ``redelivery_delay`` apart. When retries run out the event goes to the subscription's
        deadLetterTopic (if any). Returns the final outcome."""
        outcome = self.deliver(topic, event, pubsub, metadata=metadata)
        tries = 0
        while outcome in (RETRY, ERROR) and tries < self.max_redeliveries:
            tries += 1
            time.sleep(self.redelivery_delay)
            outcome = self.deliver(topic, event, pubsub, metadata=metadata)
        if outcome in (RETRY, ERROR):
            sub = self._find_subscription(topic, pubsub)
            if sub is not None:
                ev = dict(event, topic=topic, pubsubname=sub["pubsubname"])
                self._dead_letter(sub, ev)
        return outcome

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until the auto-delivery queue is empty, else AssertionError."""
        with self._queue_cond:
            if not self._queue_cond.wait_for(lambda: not self._queue, timeout=timeout):
                raise AssertionError(f"{len(self._queue)} events still waiting for delivery")

    def _record_delivery(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def _dead_letter(self, sub: dict, event: dict) -> None:
        dlt = sub.get("deadLetterTopic")
        if not dlt:
            return
        self._record_publish(
            PublishedEvent(
                pubsub=sub["pubsubname"],
                topic=dlt,
                event=copy.deepcopy(event),
                headers=_Headers(),
                query={},
                raw_content_type=CLOUDEVENTS_CONTENT_TYPE,
                dead_letter=True,
            )
        )

    def _record_publish(self, item: PublishedEvent) -> None:
        with self._lock:
            key = (item.pubsub, item.topic)
            item.offset = self._offsets.get(key, 0)
            self._offsets[key] = item.offset + 1
            self.published.append(item)
            if self.auto_deliver:
                self._queue.append(item)
                self._queue_cond.notify_all()

    def _delivery_loop(self) -> None:
        while True:
            with self._queue_cond:
                self._queue_cond.wait_for(lambda: self._queue or self._worker_stop.is_set())
                if self._worker_stop.is_set():
                    return
                item = self._queue[0]
            try:
                self._auto_deliver_one(item)
            except Exception as exc:  # keep the worker alive, but surface the problem
                logger.exception("fake dapr: auto delivery failed")
                with self._lock:
                    self.errors.append(f"auto delivery of {item.topic}: {exc!r}")
            with self._queue_cond:
                if self._queue and self._queue[0] is item:
                    self._queue.popleft()
                self._queue_cond.notify_all()

    def _auto_deliver_one(self, item: PublishedEvent) -> None:
        if not self.app_url or not isinstance(item.event, dict):
            return
        if self._find_subscription(item.topic, item.pubsub) is None:
            return  # nobody subscribed: daprd would not consume it
        meta = {"__topic": item.topic, "__partition": "0", "__offset": str(item.offset)}
        key = item.query.get("metadata.partitionKey")
        if key is not None:
            meta["__key"] = key
        self.deliver_with_redelivery(item.topic, item.event, item.pubsub, metadata=meta)

    # ------------------------------------------------------------------ jobs (scheduler)

    def trigger_job(self, name: str) -> int:
        """Fire a job now: ``POST {app_url}/job/{name}`` with exactly the job's data.

        Returns the HTTP status (0 if the app was unreachable). A one-shot job (dueTime, no
        schedule) is removed after a 2xx or 404, as is a job whose ``repeats`` are used up.
        """
        app_url = self._require_app()
        with self._lock:
            job = self.jobs[name]
        body = b"" if "data" not in job else json.dumps(job["data"]).encode()
        headers = {"Content-Type": "application/json", **self._app_headers()}
        try:
            resp = requests.post(
                f"{app_url}/job/{quote(name, safe='')}",
                data=body,
                headers=headers,
                timeout=self.request_timeout,
            )
            status = resp.status_code
        except requests.RequestException:
            status = 0
        with self._lock:
            self.job_triggers.append((name, status))
            if (200 <= status <= 299 or status == 404) and self.jobs.get(name) is job:
                runs = self._job_runs.get(name, 0) + 1
                self._job_runs[name] = runs
                one_shot = not job.get("schedule")
                repeats = job.get("repeats")
                if one_shot or (isinstance(repeats, int) and repeats > 0 and runs >= repeats):
                    del self.jobs[name]
                    self._job_runs.pop(name, None)
        return status

    # ------------------------------------------------------------------ request handling

    def _handle(self, method: str, target: str, headers: _Headers, body: bytes) -> _Response:
        try:
            return self._route(method, target, headers, body)
        except _DaprError as err:
            return err.response()
        except Exception as exc:  # a bug in the fake: make it loud in the test
            logger.exception("fake dapr: error handling %s %s", method, target)
            with self._lock:
                self.errors.append(f"{method} {target}: {exc!r}")
            return _DaprError(500, "ERR_FAKE_DAPR", f"fake sidecar error: {exc!r}").response()

    def _route(self, method: str, target: str, headers: _Headers, body: bytes) -> _Response:
        split = urlsplit(target)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))

        if path.rstrip("/") in _HEALTH_PATHS:
            return _Response(204)
        if self.api_token is not None:
            sent = headers.get("dapr-api-token") or ""
            if not hmac.compare_digest(sent.encode(), self.api_token.encode()):
                raise _DaprError(401, "ERR_API_TOKEN", "invalid api token")

        if path == "/v1.0/metadata":
            self._allow(method, "GET")
            return _json_response(200, self._metadata())
        if path.startswith("/v1.0/publish/"):
            self._allow(method, "POST")
            pubsub, topic = self._two_parts(path[len("/v1.0/publish/") :])
            return self._publish(pubsub, topic, headers, query, body)
        if path.startswith("/v1.0-alpha1/publish/bulk/"):
            self._allow(method, "POST")
            pubsub, topic = self._two_parts(path[len("/v1.0-alpha1/publish/bulk/") :])
            return self._bulk_publish(pubsub, topic, headers, query, body)
        if path.startswith("/v1.0/state/"):
            return self._state(method, path[len("/v1.0/state/") :], headers, query, body)
        for prefix in _JOB_PREFIXES:
            if path.startswith(prefix):
                return self._jobs(method, unquote(path[len(prefix) :]), body)
        return _Response(404, b"404 page not found", {"Content-Type": "text/plain"})

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise _DaprError(405, "ERR_METHOD_NOT_ALLOWED", f"method {method} not allowed")

    @staticmethod
    def _two_parts(rest: str) -> tuple[str, str]:
        first, _, second = rest.partition("/")
        if not first or not second:
            raise _DaprError(404, "ERR_NOT_FOUND", "pubsub name and topic are required")
        return unquote(first), unquote(second)

    def _metadata(self) -> dict:
        with self._lock:
            subs = list(self._subscriptions or [])
        components = [
            {"name": n, "type": "pubsub.kafka", "version": "v1", "capabilities": []}
            for n in self.pubsub_names
        ] + [
            {
                "name": n,
                "type": "state.postgresql",
                "version": "v2",
                "capabilities": ["ETAG", "TRANSACTIONAL", "TTL"],
            }
            for n in self.state_stores
        ]
        return {
            "id": self.app_id,
            "runtimeVersion": "1.16.0-fake",
            "enabledFeatures": [],
            "components": components,
            "subscriptions": subs,
            "extended": {"daprRuntimeVersion": "1.16.0-fake"},
        }

    # ------------------------------------------------------------------ publish

    def _check_pubsub(self, pubsub: str) -> None:
        if pubsub not in self.pubsub_names:
            raise _DaprError(404, "ERR_PUBSUB_NOT_FOUND", f"pubsub {pubsub} not found")

    def _publish_metadata(self, meta: dict[str, str]) -> int | None:
        ttl = meta.get("ttlInSeconds")
        if ttl in (None, ""):
            return None
        try:
            return int(ttl)
        except ValueError:
            raise _DaprError(
                400, "ERR_PUBSUB_REQUEST_METADATA", f"invalid ttlInSeconds {ttl!r}"
            ) from None

    def _make_event(
        self,
        pubsub: str,
        topic: str,
        body: bytes,
        content_type: str,
        meta: dict[str, str],
        traceparent: str | None,
    ) -> Any:
        """Build the message as daprd stores it on the broker (CloudEvent unless rawPayload)."""
        media = _media_type(content_type)
        ttl = self._publish_metadata(meta)
        now = self._now()
        tp = traceparent or _new_traceparent()

        def parse_json() -> Any:
            try:
                return json.loads(body)
            except ValueError:
                raise _DaprError(
                    400, "ERR_PUBSUB_CLOUD_EVENTS_SER", "error when unmarshalling the request body"
                ) from None

        if meta.get("rawPayload", "").lower() == "true":  # no envelope at all
            if media == "" or _is_json_media(media):
                return parse_json()
            if media.startswith(_TEXT_CONTENT_TYPES):
                return body.decode("utf-8", "replace")
            return body

        if media == CLOUDEVENTS_CONTENT_TYPE:
            obj = parse_json()
            if not isinstance(obj, dict):
                raise _DaprError(
                    400, "ERR_PUBSUB_CLOUD_EVENTS_SER", "the cloud event must be a JSON object"
                )
            event = dict(obj)  # the app's id is kept
            event["topic"] = topic
            event["pubsubname"] = pubsub
            event.setdefault("time", _rfc3339(now))
            if "traceparent" not in event:
                event["traceparent"] = tp
                event.setdefault("traceid", tp)
            if ttl is not None and ttl > 0:
                event.setdefault("expiration", _rfc3339(now + ttl))
            return event

        data_key = "data"
        if media == "" or _is_json_media(media):
            data: Any = parse_json()
            media = media or "application/json"
        elif media.startswith(_TEXT_CONTENT_TYPES):
            data = body.decode("utf-8", "replace")
        else:
            data, data_key = base64.b64encode(body).decode(), "data_base64"
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),  # a new random id on every publish, as daprd does
            "source": "fake-dapr",
            "type": "com.dapr.event.sent",
            "datacontenttype": media,
            data_key: data,
            "topic": topic,
            "pubsubname": pubsub,
            "traceid": tp,
            "traceparent": tp,
            "tracestate": "",
            "time": _rfc3339(now),
        }
        if ttl is not None and ttl > 0:
            event["expiration"] = _rfc3339(now + ttl)
        return event

    def _rejection(self, topic: str) -> int | None:
        return self._rejected.get(topic)

    @staticmethod
    def _reject_code(status: int) -> str:
        return "ERR_PUBSUB_FORBIDDEN" if status == 403 else "ERR_PUBSUB_PUBLISH_MESSAGE"

    def _publish(
        self, pubsub: str, topic: str, headers: _Headers, query: dict[str, str], body: bytes
    ) -> _Response:
        self._check_pubsub(pubsub)
        meta = {k[len("metadata.") :]: v for k, v in query.items() if k.startswith("metadata.")}
        content_type = headers.get("content-type") or ""
        event = self._make_event(
            pubsub, topic, body, content_type, meta, headers.get("traceparent")
        )
        with self._lock:
            status = self._rejection(topic)
            if status is not None:
                raise _DaprError(
                    status, self._reject_code(status), f"topic {topic} is rejected (fake dapr)"
                )
            if self._fail_queue:
                status, custom = self._fail_queue.popleft()
                if custom is not None:
                    return _json_response(status, custom)
                raise _DaprError(
                    status,
                    "ERR_PUBSUB_PUBLISH_MESSAGE",
                    f"error when publish to topic {topic} in pubsub {pubsub}: injected failure",
                )
            self._record_publish(
                PublishedEvent(pubsub, topic, event, headers, dict(query), content_type)
            )
        return _Response(204)

    def _bulk_publish(
        self, pubsub: str, topic: str, headers: _Headers, query: dict[str, str], body: bytes
    ) -> _Response:
        self._check_pubsub(pubsub)
        try:
            entries = json.loads(body)
        except ValueError:
            entries = None
        if not isinstance(entries, list):
            raise _DaprError(400, "ERR_PUBSUB_EVENTS_SER", "the body must be a JSON array")
        req_meta = {k[len("metadata.") :]: v for k, v in query.items() if k.startswith("metadata.")}
        seen: set[str] = set()
        built: list[PublishedEvent] = []
        for entry in entries:
            entry_id = entry.get("entryId") if isinstance(entry, dict) else None
            if not isinstance(entry_id, str) or not entry_id or entry_id in seen:
                raise _DaprError(
                    400, "ERR_PUBSUB_EVENTS_SER", "every entry needs a unique, non-empty entryId"
                )
            seen.add(entry_id)
            if "event" not in entry:
                raise _DaprError(400, "ERR_PUBSUB_EVENTS_SER", f"entry {entry_id} has no event")
            content_type = entry.get("contentType") or "application/json"
            raw = entry["event"]
            if isinstance(raw, str) and not _is_json_media(_media_type(content_type)):
                raw_bytes = raw.encode()
            elif isinstance(raw, str) and _media_type(content_type) == CLOUDEVENTS_CONTENT_TYPE:
                raw_bytes = raw.encode()  # a CloudEvent given as a JSON string
            else:
                raw_bytes = json.dumps(raw).encode()
            entry_meta = {str(k): str(v) for k, v in (entry.get("metadata") or {}).items()}
            meta = {**req_meta, **entry_meta}
            event = self._make_event(
                pubsub, topic, raw_bytes, content_type, meta, headers.get("traceparent")
            )
            entry_query = dict(query)
            entry_query.update({f"metadata.{k}": v for k, v in entry_meta.items()})
            built.append(PublishedEvent(pubsub, topic, event, headers, entry_query, content_type))

        def failed(status: int, code: str, error: str) -> _Response:
            failed_entries = [{"entryId": e["entryId"], "error": error} for e in entries]
            return _json_response(
                status, {"failedEntries": failed_entries, "errorCode": code, "message": error}
            )

        with self._lock:
            status = self._rejection(topic)
            if status is not None:
                return failed(status, self._reject_code(status), f"topic {topic} is rejected")
            if self._fail_queue:
                status, custom = self._fail_queue.popleft()
                if custom is not None:
                    return _json_response(status, custom)
                return failed(status, "ERR_PUBSUB_PUBLISH_MESSAGE", "injected broker failure")
            for item in built:
                self._record_publish(item)
        return _Response(204)

    # ------------------------------------------------------------------ state

    def _store(self, name: str) -> dict[str, _StateItem]:
        if name not in self._stores:
            raise _DaprError(400, "ERR_STATE_STORE_NOT_FOUND", f"state store {name} is not found")
        return self._stores[name]

    def _next_etag(self) -> str:
        self._etag_seq += 1
        return str(self._etag_seq)

    def _state(
        self, method: str, rest: str, headers: _Headers, query: dict[str, str], body: bytes
    ) -> _Response:
        store_raw, _, key_raw = rest.partition("/")
        store_name = unquote(store_raw)
        with self._lock:
            store = self._store(store_name)
            if not key_raw:
                self._allow(method, "POST", "PUT")
                return self._save(store_name, store, body)
            if key_raw in ("transaction", "bulk") and method in ("POST", "PUT"):
                if key_raw == "transaction":
                    return self._transaction(store_name, store, body)
                return self._bulk_get(store, body)
            key = unquote(key_raw)
            if method == "GET":
                return self._get(store, key)
            if method == "DELETE":
                etag = headers.get("if-match") or None
                self._apply_delete(store, key, etag, "ERR_STATE_DELETE", query.get("concurrency"))
                return _Response(204)
            self._allow(method, "GET", "DELETE")
            raise AssertionError("unreachable")

    def _get(self, store: dict[str, _StateItem], key: str) -> _Response:
        item = store.get(key)
        if item is not None and item.expired(self._now()):
            del store[key]
            item = None
        if item is None:
            return _Response(204)
        hdrs = {"ETag": item.etag}
        if item.expires_at is not None:
            hdrs["metadata.ttlExpireTime"] = _rfc3339(item.expires_at)
        return _json_response(200, item.value, hdrs)

    def _bulk_get(self, store: dict[str, _StateItem], body: bytes) -> _Response:
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "invalid bulk get body") from None
        out = []
        now = self._now()
        for key in req.get("keys") or []:
            item = store.get(key)
            if item is None or item.expired(now):
                out.append({"key": key})
            else:
                out.append({"key": key, "data": item.value, "etag": item.etag})
        return _json_response(200, out)

    @staticmethod
    def _parse_ttl(meta: Any, code: str) -> int | None:
        if not isinstance(meta, dict) or meta.get("ttlInSeconds") in (None, ""):
            return None
        raw = meta["ttlInSeconds"]
        invalid = _DaprError(500, code, f"invalid ttlInSeconds value {raw!r}")
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise invalid
        try:
            ttl = int(raw)
        except ValueError:
            raise invalid from None
        if ttl < -1:
            raise _DaprError(500, code, f"ttlInSeconds must be -1 or greater, got {ttl}")
        return ttl

    @staticmethod
    def _check_key(item: Any) -> str:
        if not isinstance(item, dict):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "state item must be an object")
        key = item.get("key")
        if not isinstance(key, str) or not key:
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "state key is required")
        if "||" in key:
            raise _DaprError(
                400, "ERR_MALFORMED_REQUEST", f"input key/keyPrefix '{key}' can't contain '||'"
            )
        return key

    @staticmethod
    def _concurrency(item: dict) -> str:
        options = item.get("options") or {}
        concurrency = options.get("concurrency") or "last-write"
        if concurrency not in ("first-write", "last-write"):
            raise _DaprError(
                400, "ERR_MALFORMED_REQUEST", f"invalid concurrency option {concurrency!r}"
            )
        return concurrency

    @staticmethod
    def _etag_of(item: dict) -> str | None:
        etag = item.get("etag")
        if etag in (None, ""):
            return None
        if not isinstance(etag, str):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "etag must be a string")
        return etag

    def _apply_set(self, store: dict[str, _StateItem], item: dict, conflict_code: str) -> None:
        """Apply one save to ``store`` (a working copy), raising _DaprError like daprd does."""
        key = self._check_key(item)
        etag = self._etag_of(item)
        concurrency = self._concurrency(item)
        ttl = self._parse_ttl(item.get("metadata"), conflict_code)
        now = self._now()
        current = store.get(key)
        if current is not None and current.expired(now):
            current = None
        if etag is not None:
            if current is None or current.etag != etag:
                raise _DaprError(
                    409,
                    conflict_code,
                    "possible etag mismatch. error from state store: ETag mismatch",
                )
        elif concurrency == "first-write" and current is not None:
            # PostgreSQL store: the INSERT hits the unique key; daprd reports a plain failure.
            raise _DaprError(
                500,
                conflict_code,
                f"failed saving state in state store: key {key} already exists (first-write)",
            )
        expires = now + ttl if ttl is not None and ttl > 0 else None
        store[key] = _StateItem(copy.deepcopy(item.get("value")), self._next_etag(), expires)

    def _apply_delete(
        self,
        store: dict[str, _StateItem],
        key: str,
        etag: str | None,
        conflict_code: str,
        concurrency: str | None = None,
    ) -> None:
        if not key or "||" in key:
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", f"invalid state key {key!r}")
        current = store.get(key)
        if current is not None and current.expired(self._now()):
            current = None
        if etag is not None and (current is None or current.etag != etag):
            raise _DaprError(
                409, conflict_code, "possible etag mismatch. error from state store: ETag mismatch"
            )
        store.pop(key, None)

    def _save(self, name: str, store: dict[str, _StateItem], body: bytes) -> _Response:
        try:
            items = json.loads(body)
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "the body must be a JSON array")
        work = dict(store)
        for item in items:
            self._apply_set(work, item, "ERR_STATE_SAVE")
        self._stores[name] = work
        return _Response(204)

    def _transaction(self, name: str, store: dict[str, _StateItem], body: bytes) -> _Response:
        try:
            req = json.loads(body)
        except ValueError:
            req = None
        if not isinstance(req, dict) or not isinstance(req.get("operations", []), list):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "invalid transaction body")
        work = dict(store)
        for op in req.get("operations") or []:
            kind = op.get("operation") if isinstance(op, dict) else None
            request = op.get("request") if isinstance(op, dict) else None
            if kind not in ("upsert", "delete"):
                raise _DaprError(
                    400,
                    "ERR_NOT_SUPPORTED_STATE_OPERATION",
                    f"operation type {kind} not supported",
                )
            if not isinstance(request, dict):
                raise _DaprError(400, "ERR_MALFORMED_REQUEST", "operation request is required")
            if kind == "upsert":
                self._apply_set(work, request, "ERR_STATE_TRANSACTION")
            else:
                key = self._check_key(request)
                self._apply_delete(work, key, self._etag_of(request), "ERR_STATE_TRANSACTION")
        self._stores[name] = work
        return _Response(204)

    # ------------------------------------------------------------------ jobs

    def _jobs(self, method: str, name: str, body: bytes) -> _Response:
        if not name or _BAD_JOB_NAME.search(name):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", f"invalid job name {name!r}")
        if method == "POST":
            return self._schedule_job(name, body)
        if method == "GET":
            with self._lock:
                job = self.jobs.get(name)
                if job is None:
                    raise _DaprError(500, "ERR_GET_JOB", f"job not found: {name}")
                return _json_response(200, job)
        if method == "DELETE":
            with self._lock:
                self.jobs.pop(name, None)
                self._job_runs.pop(name, None)
                self.job_log.append(("delete", name, None))
            return _Response(204)
        self._allow(method, "POST", "GET", "DELETE")
        raise AssertionError("unreachable")

    def _schedule_job(self, name: str, body: bytes) -> _Response:
        try:
            req = json.loads(body)
        except ValueError:
            req = None
        if not isinstance(req, dict):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "the job must be a JSON object")
        if not req.get("schedule") and not req.get("dueTime"):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "a job needs a schedule or a dueTime")
        repeats = req.get("repeats")
        if repeats is not None and (not isinstance(repeats, int) or repeats < 0):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "repeats must be a positive integer")
        job: dict[str, Any] = {"name": name}
        for key in ("dueTime", "schedule", "repeats", "ttl", "data", "failurePolicy"):
            if req.get(key) is not None:
                job[key] = copy.deepcopy(req[key])
        with self._lock:
            if name in self.jobs and req.get("overwrite") is not True:
                raise _DaprError(409, "ERR_SCHEDULE_JOB", f"job {name} already exists")
            self.jobs[name] = job
            self._job_runs.pop(name, None)
            self.job_log.append(("schedule", name, copy.deepcopy(req)))
        return _Response(204)


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in sidecar by hand, e.g. beside ``DAPR_ENABLED=true make run``::

        python -m tests.support.fake_dapr --port 3500 --app-url http://127.0.0.1:8000

    It prints every CloudEvent published and, with ``--deliver``, delivers each one to
    the app's subscribed route as daprd would. For trying things out; never part of the app.
    """
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Stand-in Dapr sidecar (tests only).")
    parser.add_argument("--port", type=int, default=3500)
    parser.add_argument("--app-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-token", default=None, help="DAPR_API_TOKEN the app must send.")
    parser.add_argument("--app-token", default=None, help="APP_API_TOKEN sent to the app.")
    parser.add_argument("--deliver", action="store_true", help="Deliver events to the app.")
    args = parser.parse_args(argv)
    sidecar = FakeDaprSidecar(
        args.app_url,
        port=args.port,
        api_token=args.api_token,
        app_token=args.app_token,
        auto_deliver=args.deliver,
    ).start()
    print(f"stand-in sidecar on {sidecar.url} for app {args.app_url} (Ctrl-C to stop)")
    seen = 0
    try:
        while True:
            events = sidecar.events()
            for event in events[seen:]:
                print(
                    json.dumps({k: event.get(k) for k in ("id", "type", "topic", "subject")}),
                    flush=True,
                )
            seen = len(events)
            time.sleep(0.2)
    except KeyboardInterrupt:
        sidecar.stop()


if __name__ == "__main__":
    main()
