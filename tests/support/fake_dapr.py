"""A stand-in Dapr sidecar (daprd 1.14-1.18, HTTP API) for tests and for trying the app by hand.

``daprd`` cannot be installed on these machines, so tests run this loopback HTTP server in its
place. It behaves as /work/shared/docs/dapr-protocol-notes.md and daprd's source say, including
where daprd is unkind:

* app -> sidecar: publish (single and bulk), state (save/get/delete/transaction/bulk get, keys
  stored as ``<app-id>||<key>``, UUID etags, PostgreSQL store semantics), jobs (schedule/get/
  delete), health and metadata, with ``dapr-api-token`` checks. Only the routes of the claimed
  ``runtime_version`` exist; any other path falls through to service invocation, as in daprd:
  404 ``ERR_DIRECT_INVOKE`` "failed getting app id ...".
* sidecar -> app: ``GET /dapr/subscribe`` (only a 200 is read), CloudEvent delivery with route
  rules and daprd's reading of the app's answer, redelivery by a resiliency retry policy, then
  the subscription's dead-letter topic; job triggers (``POST /job/<name>``) with daprd's job
  failure policy (3 retries, 1 s apart, then that trigger is dropped).
* the broker: Kafka's model (``InMemoryBroker``). A topic is a set of ordered partitions, the
  partition chosen by the record key (``metadata.partitionKey``); each app id reads as its own
  consumer group and has at most one message in flight per partition, so a message being
  retried holds back the later messages of its partition, as Kafka does in place. Or Dapr's
  ``pubsub.redis`` on the Redis server (``RedisStreamsBroker``, ``--broker redis://...``):
  several sidecars, each with its own app id and consumer group, share one broker, so a test
  can run the deployed topology (see tests/events/test_topology.py).

In tests deliveries and job triggers happen only when asked (``deliver``, ``trigger_job``),
unless ``auto_deliver`` / ``fire_jobs`` run them in the background as daprd would. Everything is
kept in memory and exposed for assertions (``published``, ``deliveries``, ``state(store)``,
``jobs``, ``job_log``, ``job_triggers``). Never import this module from application code.

Run by hand beside the app (see ``main``)::

    python -m tests.support.fake_dapr --port 3500 --app-url http://127.0.0.1:8000 --deliver
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hmac
import json
import logging
import queue
import re
import secrets
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import requests
from croniter import croniter
from dateutil.relativedelta import relativedelta

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE",
    "DROP",
    "ERROR",
    "RETRY",
    "RUNTIME_VERSIONS",
    "SUCCESS",
    "Delivery",
    "FakeDaprSidecar",
    "InMemoryBroker",
    "PublishedEvent",
    "Record",
    "RedisStreamsBroker",
    "RetryPolicy",
    "interpret_app_response",
    "parse_go_duration",
]

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
SUCCESS = "SUCCESS"
RETRY = "RETRY"
DROP = "DROP"
ERROR = "ERROR"

#: The daprd minor versions the stand-in can claim to be.
RUNTIME_VERSIONS = ("1.14", "1.15", "1.16", "1.17", "1.18")
_HEALTH_PATHS = ("/v1.0/healthz", "/v1.0/healthz/outbound")
_BAD_JOB_NAME = re.compile(r"[/\\#?|\x00\r\n]")
_CEL_EQUALS = re.compile(
    r"""^event\.([A-Za-z_][A-Za-z0-9_]*)\s*==\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')$"""
)
_NO_APP_ID = "failed getting app id either from the URL path or the header dapr-app-id"
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
    partition: int = 0  # the broker partition (chosen by the partition key)
    offset: int = 0  # offset in that partition, sent to the app as the ``__offset`` header
    dead_letter: bool = False  # True when daprd put it there after a DROP / exhausted retries

    @property
    def key(self) -> str | None:
        """The Kafka record key: the publish's ``metadata.partitionKey``."""
        return self.query.get("metadata.partitionKey")


@dataclass
class Delivery:
    """One attempt to deliver an event to the app."""

    topic: str
    event_id: str | None
    path: str  # "" when no route matched
    http_status: int  # 0 when the app could not be reached / nothing was sent
    outcome: str  # SUCCESS | RETRY | DROP | ERROR
    pubsub: str = ""
    partition: int | None = None  # set for deliveries made by the background consumers
    offset: int | None = None
    at: float = field(default_factory=time.time)  # when the app's answer came (wall clock)


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


def _no_such_route() -> _DaprError:
    """daprd's fallback for a path or method no API serves: service invocation without an app
    id (e.g. ``/v1.0/jobs/...`` on 1.14-1.17)."""
    return _DaprError(404, "ERR_DIRECT_INVOKE", _NO_APP_ID)


_ETAG_MISMATCH = "possible etag mismatch. error from state store"
#: How daprd answers a failure of the state store: (status the store implies, cause) -> error.
_StoreFailure = Callable[[int, str], _DaprError]


def _save_failure(store: str) -> _StoreFailure:
    """A single save: 409 on an etag mismatch, else 500; ``ERR_STATE_SAVE``."""
    return lambda status, cause: _DaprError(
        status, "ERR_STATE_SAVE", f"failed saving state in state store {store}: {cause}"
    )


def _delete_failure(key: str) -> _StoreFailure:
    """A single delete: 409 on an etag mismatch; ``ERR_STATE_DELETE``."""
    return lambda status, cause: _DaprError(
        status, "ERR_STATE_DELETE", f"failed deleting state with key {key}: {cause}"
    )


def _transaction_failure(status: int, cause: str) -> _DaprError:
    """Every transaction error, an etag mismatch included, is a 500 ``ERR_STATE_TRANSACTION``."""
    return _DaprError(
        500, "ERR_STATE_TRANSACTION", f"error while executing state transaction: {cause}"
    )


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
    return media.startswith("application/json") or media.endswith("+json")


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


# --------------------------------------------------------------------------- time formats

_GO_DURATION_PART = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")
_ISO8601_DURATION = re.compile(
    r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
#: robfig/cron's descriptors (dapr/kit/cron), as 6-field expressions with seconds.
_CRON_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string (``time.ParseDuration``): ``90s``, ``1h30m``, ``-1.5h``."""
    sign, rest = 1.0, text
    if rest and rest[0] in "+-":
        sign, rest = (-1.0 if rest[0] == "-" else 1.0), rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total, pos = 0.0, 0
    while pos < len(rest):
        match = _GO_DURATION_PART.match(rest, pos)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def _parse_point_in_time(text: str, now: float) -> float:
    """go-etcd-cron's ``parsePointInTime``: RFC 3339, a Go duration from ``now``, or a
    non-repeating ISO 8601 duration from ``now``."""
    if _RFC3339.match(text):
        main, dot, rest = text.partition(".")
        if dot:  # Go allows nanoseconds; Python at most microseconds
            digits = re.match(r"\d+", rest).group(0)
            text = f"{main}.{digits[:6]}{rest[len(digits) :]}"
        return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T")).timestamp()
    try:
        return now + parse_go_duration(text)
    except ValueError:
        pass
    match = _ISO8601_DURATION.match(text)
    if match is None or text == "P" or text.endswith("T"):
        raise ValueError(f"due time format not recognized: {text!r}")
    years, months, weeks, days, hours, minutes = (int(g or 0) for g in match.groups()[:6])
    seconds = float(match.group(7) or 0)
    start = datetime.fromtimestamp(now, UTC)
    end = start + relativedelta(
        years=years, months=months, weeks=weeks, days=days, hours=hours, minutes=minutes
    )
    return end.timestamp() + seconds


class _Schedule:
    """A job's ``schedule`` as dapr/kit/cron parses it: 6 fields with seconds first,
    ``@every <Go duration>`` or a descriptor such as ``@daily``; times in UTC."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.every: float | None = None
        self.cron: str | None = None
        if spec.startswith("@every "):
            delay = parse_go_duration(spec.removeprefix("@every ").strip())
            self.every = max(1.0, float(int(delay)))  # whole seconds, at least one
            return
        expr = _CRON_DESCRIPTORS.get(spec, spec)
        if len(expr.split()) != 6 or not croniter.is_valid(expr, second_at_beginning=True):
            raise ValueError(f"invalid schedule {spec!r}: 6 fields with seconds, or @every/@daily")
        self.cron = expr

    def next_after(self, moment: float) -> float:
        """The first tick strictly after ``moment``."""
        if self.every is not None:
            return float(int(moment)) + self.every
        start = datetime.fromtimestamp(moment, UTC)
        return croniter(self.cron, start, second_at_beginning=True).get_next(float)


# --------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class RetryPolicy:
    """A Dapr resiliency retry policy for inbound deliveries (``spec.policies.retries``).

    ``max_retries`` -1 retries forever (a policy with ``maxRetries: -1``; the shipped
    dapr/resiliency.yaml's ``deliverRetry`` allows 10). Constant
    backoff waits ``interval`` before every retry; with ``max_interval`` set it is exponential:
    ``interval`` (Dapr: 500 ms) times 1.5 per retry, capped at ``max_interval`` (Dapr's
    randomisation is left out, so tests are deterministic).
    """

    max_retries: int = -1
    interval: float = 0.05
    max_interval: float | None = None

    def __post_init__(self) -> None:
        if self.max_retries < -1:
            raise ValueError("max_retries is -1 (forever) or more")

    def allows(self, retries_done: int) -> bool:
        """Whether one more retry follows ``retries_done`` retries."""
        return self.max_retries == -1 or retries_done < self.max_retries

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        if self.max_interval is None:
            return self.interval
        return min(self.max_interval, self.interval * 1.5 ** (retry - 1))


@dataclass
class _Job:
    """The scheduler's view of one job (go-etcd-cron's stored job and its counter)."""

    name: str
    data: Any
    has_data: bool
    due_at: float  # the next trigger (sidecar clock)
    schedule: _Schedule | None
    repeats: int | None
    expires_at: float | None
    retry_interval: float  # the job failure policy
    max_retries: int  # -1 = forever
    count: int = 0


def _job_failure_policy(raw: Any) -> tuple[float, int]:
    """(interval, max retries) of a ``failurePolicy``; daprd's default is 1 s, 3 retries."""
    if raw is None:
        return 1.0, 3
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ValueError("failurePolicy is {'drop': {}} or {'constant': {...}}")
    if "drop" in raw:
        return 0.0, 0
    constant = raw.get("constant")
    if not isinstance(constant, dict):
        raise ValueError("failurePolicy is {'drop': {}} or {'constant': {...}}")
    interval = parse_go_duration(str(constant.get("interval", "0s")))
    retries = constant.get("maxRetries")
    if retries is not None and (not isinstance(retries, int) or retries < 0):
        raise ValueError("failurePolicy.constant.maxRetries must be a positive integer")
    return interval, -1 if retries is None else retries


# --------------------------------------------------------------------------- the broker


@dataclass
class Record:
    """One message in a broker partition."""

    pubsub: str
    topic: str
    partition: int
    offset: int
    key: str | None
    published: PublishedEvent
    message_id: str | None = None  # the Redis stream entry id (RedisStreamsBroker)


class InMemoryBroker:
    """Kafka's model in memory: each topic has ``partitions`` ordered partitions; a record goes
    to the partition of its key (a stable hash; Kafka uses murmur2), keyless records round-robin.
    A consumer group (an app id) commits an offset per partition. A sidecar keeps its broker
    across stop()/start(), so a restarted sidecar resumes from its committed offsets.

    Records from several sidecars in one process meet only if they are handed the same
    broker; sidecars in the deployed topology share a ``RedisStreamsBroker`` instead.
    """

    shared = False  # the sidecar consumes it partition by partition, in this process

    def __init__(self, partitions: int = 1) -> None:
        if partitions < 1:
            raise ValueError("a topic has at least one partition")
        self.partitions = partitions
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str, int], list[Record]] = {}
        self._committed: dict[tuple[str, str, str, int], int] = {}
        self._round_robin: dict[tuple[str, str], int] = {}
        self._listeners: list[Callable[[Record], None]] = []

    def on_append(self, listener: Callable[[Record], None]) -> None:
        """Call ``listener(record)`` after every append (a consumer learns of new records)."""
        with self._lock:
            self._listeners.append(listener)

    def partition_for(self, pubsub: str, topic: str, key: str | None) -> int:
        if key is not None:
            return zlib.crc32(key.encode()) % self.partitions
        with self._lock:
            turn = self._round_robin.get((pubsub, topic), 0)
            self._round_robin[(pubsub, topic)] = turn + 1
        return turn % self.partitions

    def append(self, published: PublishedEvent) -> Record:
        """Store a message at the end of its partition; sets its partition and offset."""
        key = published.key
        partition = self.partition_for(published.pubsub, published.topic, key)
        with self._lock:
            log = self._logs.setdefault((published.pubsub, published.topic, partition), [])
            record = Record(published.pubsub, published.topic, partition, len(log), key, published)
            published.partition, published.offset = partition, record.offset
            log.append(record)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(record)
        return record

    def topic_partitions(self) -> list[tuple[str, str, int]]:
        """Every (pubsub, topic, partition) holding records."""
        with self._lock:
            return list(self._logs)

    def next_record(self, group: str, pubsub: str, topic: str, partition: int) -> Record | None:
        """The record at the group's committed offset, or None when it has read them all."""
        with self._lock:
            log = self._logs.get((pubsub, topic, partition), [])
            offset = self._committed.get((group, pubsub, topic, partition), 0)
            return log[offset] if offset < len(log) else None

    def commit(self, group: str, record: Record) -> None:
        """The group is done with ``record``: its next read is the record after it."""
        with self._lock:
            self._committed[(group, record.pubsub, record.topic, record.partition)] = (
                record.offset + 1
            )

    def lag(self, group: str, pubsub: str, topic: str, partition: int) -> int:
        """Records of the partition the group has not committed yet."""
        with self._lock:
            end = len(self._logs.get((pubsub, topic, partition), []))
            return end - self._committed.get((group, pubsub, topic, partition), 0)


_DAPR_DURATION_KEYS = {
    "processingTimeout": "processing_timeout",
    "redeliverInterval": "redeliver_interval",
}


def _dapr_duration(text: str) -> float:
    """A pubsub.redis duration: a bare number is milliseconds (legacy), else a Go duration."""
    return int(text) / 1000 if text.isdigit() else parse_go_duration(text)


class RedisStreamsBroker:
    """Dapr's ``pubsub.redis`` on a real Redis server, so several sidecars share one broker.

    As components-contrib's pubsub/redis (1.14-1.18) does it:

    * one stream per topic (``<key_prefix><topic>``; the prefix is the stand-in's, to keep
      tests apart on one server); a publish is ``XADD`` with the fields ``data`` (the CloudEvent
      as JSON bytes, as daprd hands it to the component) and ``metadata`` (the publish's
      metadata as a JSON object, e.g. ``{"partitionKey": "42"}``), only when there is some;
    * a consumer group per ``consumerID``, which daprd sets to the app id: ``XGROUP CREATE
      <stream> <app-id> 0 MKSTREAM`` when the sidecar subscribes, so a group created late still
      reads the whole stream. Two app ids each get every message; two sidecars of one app id
      share the group (and, as in Dapr, one consumer name) and split its messages;
    * ``XREADGROUP ... >`` for new messages, ``XACK`` once daprd is done with one: delivered,
      dropped, dead-lettered, or (from 1.17) given up on after the resiliency policy's retries;
      before 1.17 such a message stayed pending;
    * every ``redeliver_interval`` (Dapr: 15 s), messages pending for ``processing_timeout``
      (Dapr: 60 s) are taken over with ``XCLAIM`` and delivered again: what a sidecar that
      stopped mid-delivery left behind. Unlike pubsub.redis, a sidecar never claims a message it
      is still holding itself (pubsub.redis can deliver it twice at once).

    pubsub.redis has no partitions and runs up to ``concurrency`` (10) deliveries at once, in
    any order. The stand-in keeps Kafka's rule on top, because production runs Kafka: each
    sidecar delivers a topic in ``partitions`` ordered lanes chosen by the partition key, one
    message in flight per lane. Order holds within one sidecar; two sidecars of one app id
    split the stream, as pubsub.redis does.

    ``url`` is ``redis://host:port/db``; its query can set ``keyPrefix``, ``partitions``,
    ``processingTimeout`` and ``redeliverInterval`` (a bare number is milliseconds, as Dapr's
    metadata reads it). ``purge()`` deletes every key under the prefix.
    """

    shared = True  # other sidecars (other processes) read and write the same streams

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key_prefix: str = "",
        partitions: int = 1,
        processing_timeout: float = 60.0,
        redeliver_interval: float = 15.0,
        queue_depth: int = 100,
    ) -> None:
        import redis

        split = urlsplit(url)
        options = dict(parse_qsl(split.query))
        key_prefix = options.pop("keyPrefix", key_prefix)
        partitions = int(options.pop("partitions", partitions))
        durations = {
            "processing_timeout": processing_timeout,
            "redeliver_interval": redeliver_interval,
        }
        for name, attr in _DAPR_DURATION_KEYS.items():
            if name in options:
                durations[attr] = _dapr_duration(options.pop(name))
        if options:
            raise ValueError(f"unknown redis broker options: {', '.join(options)}")
        if partitions < 1:
            raise ValueError("a topic has at least one partition")
        self.url = split._replace(query="").geturl()
        self.key_prefix = key_prefix
        self.partitions = partitions
        self.processing_timeout = durations["processing_timeout"]
        self.redeliver_interval = durations["redeliver_interval"]
        self.queue_depth = queue_depth
        self.client = redis.Redis.from_url(self.url, socket_timeout=10)
        self.client.ping()
        self._listeners: list[Callable[[Record], None]] = []

    # -- what the sidecar calls ------------------------------------------------------------

    def stream(self, topic: str) -> str:
        return f"{self.key_prefix}{topic}"

    def on_append(self, listener: Callable[[Record], None]) -> None:
        """Kept for the sidecar's interface; a shared broker is read by subscriptions."""
        self._listeners.append(listener)

    def partition_for(self, pubsub: str, topic: str, key: str | None) -> int:
        """The delivery lane of a message: by its partition key (keyless: lane 0)."""
        return zlib.crc32(key.encode()) % self.partitions if key is not None else 0

    def append(self, published: PublishedEvent) -> Record:
        """``XADD`` the message as pubsub.redis's Publish does."""
        event = published.event
        data = event if isinstance(event, bytes) else json.dumps(event).encode()
        fields: dict[str, bytes | str] = {"data": data}
        metadata = _publish_metadata(published.query)
        if metadata:
            fields["metadata"] = json.dumps(metadata)
        message_id = self.client.xadd(self.stream(published.topic), fields).decode()
        published.partition = self.partition_for(published.pubsub, published.topic, published.key)
        return Record(
            published.pubsub,
            published.topic,
            published.partition,
            0,
            published.key,
            published,
            message_id,
        )

    def create_group(self, topic: str, group: str) -> None:
        """pubsub.redis's CreateConsumerGroup: from the stream's start; an existing group stays."""
        import redis

        try:
            self.client.xgroup_create(self.stream(topic), group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_new(self, pubsub: str, topic: str, group: str, block: float = 0.1) -> list[Record]:
        """``XREADGROUP GROUP <group> <group> COUNT <queue depth> BLOCK ... STREAMS <s> >``."""
        import redis

        try:
            answer = self.client.xreadgroup(
                group,
                group,
                {self.stream(topic): ">"},
                count=self.queue_depth,
                block=max(1, int(block * 1000)),
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.create_group(topic, group)  # as pubsub.redis does after a data loss
            return []
        return [
            self._record(pubsub, topic, message_id, fields)
            for _, messages in answer or []
            for message_id, fields in messages
        ]

    def reclaim(self, pubsub: str, topic: str, group: str, holding: set[str]) -> list[Record]:
        """Messages pending for ``processing_timeout`` or more (XPENDING), taken over with
        XCLAIM; entries that no longer exist are acknowledged, as pubsub.redis does."""
        stream = self.stream(topic)
        idle_ms = int(self.processing_timeout * 1000)
        pending = self.client.xpending_range(
            stream, group, min="-", max="+", count=self.queue_depth, idle=idle_ms
        )
        ids = [p["message_id"].decode() for p in pending]
        ids = [i for i in ids if i not in holding]
        if not ids:
            return []
        claimed = self.client.xclaim(stream, group, group, idle_ms, ids)
        records = [
            self._record(pubsub, topic, message_id, fields)
            for message_id, fields in claimed
            if fields is not None
        ]
        found = {r.message_id for r in records}
        gone = [i for i in ids if i not in found]
        if gone:
            self.client.xack(stream, group, *gone)
        return records

    def ack(self, group: str, record: Record) -> None:
        self.client.xack(self.stream(record.topic), group, record.message_id)

    def backlog(self, group: str, topic: str) -> int:
        """Messages of the topic the group has not acknowledged (unread plus pending); the
        whole stream while the group does not exist yet (it will read from the start)."""
        import redis

        stream = self.stream(topic)
        try:
            infos = self.client.xinfo_groups(stream)
        except redis.ResponseError:  # no such stream: nothing was published
            return 0
        for info in infos:
            if info["name"].decode() == group:
                lag = info.get("lag")
                if lag is None:  # Redis cannot tell after deletions: count what is after
                    after = f"({info['last-delivered-id'].decode()}"
                    lag = len(self.client.xrange(stream, min=after))
                return int(lag) + int(info["pending"])
        return int(self.client.xlen(stream))

    # -- for tests ---------------------------------------------------------------------------

    def entries(self, topic: str) -> list[tuple[str, dict[str, bytes]]]:
        """Every entry of the topic's stream: (id, fields), oldest first."""
        return [
            (message_id.decode(), {k.decode(): v for k, v in fields.items()})
            for message_id, fields in self.client.xrange(self.stream(topic))
        ]

    def events(self, topic: str) -> list[Any]:
        """The messages of the topic's stream (their ``data``, decoded from JSON)."""
        return [_decode_data(fields.get("data", b"")) for _, fields in self.entries(topic)]

    def purge(self) -> None:
        """Delete every key under the prefix (refused without one: it would empty the db)."""
        if not self.key_prefix:
            raise ValueError("purge() needs a key_prefix")
        keys = list(self.client.scan_iter(match=f"{self.key_prefix}*", count=500))
        if keys:
            self.client.delete(*keys)

    def close(self) -> None:
        self.client.close()

    def _record(self, pubsub: str, topic: str, message_id: bytes | str, fields: dict) -> Record:
        """pubsub.redis's message: ``data`` as is and ``metadata`` decoded from JSON."""
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        metadata: dict[str, str] = {}
        raw_meta = fields.get("metadata")
        if raw_meta:
            try:
                metadata = {str(k): str(v) for k, v in json.loads(raw_meta).items()}
            except (ValueError, AttributeError):
                logger.warning("fake dapr: could not read the metadata of message %s", message_id)
        key = metadata.get("partitionKey")
        published = PublishedEvent(
            pubsub=pubsub,
            topic=topic,
            event=_decode_data(fields.get("data", b"")),
            headers=_Headers(),
            query={f"metadata.{k}": v for k, v in metadata.items()},
            raw_content_type=CLOUDEVENTS_CONTENT_TYPE,
            partition=self.partition_for(pubsub, topic, key),
        )
        mid = message_id.decode() if isinstance(message_id, bytes) else message_id
        return Record(pubsub, topic, published.partition, 0, key, published, mid)


def _publish_metadata(query: dict[str, str]) -> dict[str, str]:
    return {k[len("metadata.") :]: v for k, v in query.items() if k.startswith("metadata.")}


def _decode_data(data: bytes) -> Any:
    """A message's data: the CloudEvent (or raw JSON payload) as an object, else the bytes."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data


def _message_metadata(record: Record | None) -> dict[str, str] | None:
    """What daprd passes on to a dead-letter topic with a pubsub.redis message: its metadata."""
    return record.published.query if record is not None and record.message_id else None


class _RedisConsumer:
    """One sidecar's subscription to one topic of a ``RedisStreamsBroker``: a reader
    (``XREADGROUP``), a reclaimer (``XPENDING`` + ``XCLAIM`` every ``redeliver_interval``) and
    one worker per lane, each delivering its messages in order, one at a time."""

    def __init__(self, sidecar: FakeDaprSidecar, pubsub: str, topic: str) -> None:
        self.sidecar = sidecar
        self.broker: RedisStreamsBroker = sidecar.broker  # type: ignore[assignment]
        self.pubsub = pubsub
        self.topic = topic
        self.group = sidecar.app_id  # daprd's default consumerID
        self.threads: list[threading.Thread] = []
        self._lanes: dict[int, queue.Queue[Record]] = {}
        self._holding: set[str] = set()  # message ids queued or in flight here
        self._lock = threading.Lock()

    def start(self) -> None:
        self.broker.create_group(self.topic, self.group)
        self._spawn(self._read, "read")
        if self.broker.processing_timeout > 0 and self.broker.redeliver_interval > 0:
            self._spawn(self._reclaim, "reclaim")

    def _spawn(self, target: Callable[..., None], role: str, *args: Any) -> None:
        thread = threading.Thread(
            target=self._guarded,
            args=(target, *args),
            name=f"fake-dapr-{self.topic}-{role}",
            daemon=True,
        )
        self.threads.append(thread)
        thread.start()

    def _guarded(self, target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        except Exception as exc:  # keep the failure visible to the test
            if self.sidecar._stopping.is_set():
                return  # the connection went away with the sidecar
            logger.exception("fake dapr: redis consumer of %s failed", self.topic)
            with self.sidecar._lock:
                self.sidecar.errors.append(f"redis consumer of {self.topic}: {exc!r}")

    def _read(self) -> None:
        while not self.sidecar._stopping.is_set():
            for record in self.broker.read_new(self.pubsub, self.topic, self.group):
                self._enqueue(record)

    def _reclaim(self) -> None:
        stopping = self.sidecar._stopping
        while not stopping.is_set():
            with self._lock:
                holding = set(self._holding)
            for record in self.broker.reclaim(self.pubsub, self.topic, self.group, holding):
                self._enqueue(record)
            stopping.wait(self.broker.redeliver_interval)

    def _enqueue(self, record: Record) -> None:
        with self._lock:
            if record.message_id in self._holding:
                return
            self._holding.add(record.message_id)
            lane = self._lanes.get(record.partition)
            if lane is None:
                lane = self._lanes[record.partition] = queue.Queue()
                self._spawn(self._work, f"lane-{record.partition}", lane)
        lane.put(record)

    def _work(self, lane: queue.Queue[Record]) -> None:
        stopping = self.sidecar._stopping
        while not stopping.is_set():
            try:
                record = lane.get(timeout=0.05)
            except queue.Empty:
                continue
            if not self._deliver(record):
                return  # stopped mid-delivery: left pending, to be claimed again
            with self._lock:
                self._holding.discard(record.message_id)

    def _deliver(self, record: Record) -> bool:
        """Deliver with the resiliency policy and acknowledge as daprd and pubsub.redis do;
        False when the sidecar stopped meanwhile (the message stays pending)."""
        sidecar = self.sidecar
        event = record.published.event
        if not isinstance(event, dict):  # daprd cannot read it as a CloudEvent
            sub = sidecar.find_subscription(self.topic, self.pubsub)
            if sub is not None and sub.get("deadLetterTopic"):
                sidecar._dead_letter(sub, event, _message_metadata(record))
            self.broker.ack(self.group, record)
            return True
        headers = _publish_metadata(record.published.query)
        outcome = sidecar._deliver_with_policy(self.topic, event, self.pubsub, headers, record)
        if outcome is None:
            return False
        if outcome in (RETRY, ERROR):
            sub = sidecar.find_subscription(self.topic, self.pubsub)
            dead_lettered = sub is not None and bool(sub.get("deadLetterTopic"))
            if not dead_lettered and sidecar._minor < 17:
                return True  # before 1.17 pubsub.redis left it pending, to be claimed again
        self.broker.ack(self.group, record)
        return True


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    """Keeps each client's connection open between requests, as daprd does (HTTP/1.1
    keep-alive); ``close_connections()`` cuts every client off, so a stopped sidecar
    really is gone for a client holding a pooled connection."""

    allow_reuse_address = True
    daemon_threads = True
    sidecar: FakeDaprSidecar

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as daprd (fasthttp) serves its clients

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

    ``runtime_version``: the daprd release claimed ("1.14" ... "1.18", default "1.16"); it
    decides which Jobs and bulk-publish prefixes exist (``/v1.0/jobs`` from 1.18,
    ``/v1.0-alpha1/jobs`` on all; ``/v1.0/publish/bulk`` from 1.17) and whether scheduling an
    existing job without ``overwrite`` is a 409 (from 1.16). It can be changed while running.
    ``app_id``: state keys are stored as ``<app_id>||<key>``; the source of wrapped events.
    ``api_token``: the token the app must send (``dapr-api-token``); None = not checked.
    ``app_token``: the token this sidecar sends to the app on every call.
    ``auto_deliver``: consume every partition of every subscribed topic in the background, one
    message in flight per partition, redelivered per ``retry_policy``; ``drain()`` waits.
    ``fire_jobs``: a scheduler thread triggers jobs when due (``trigger_job`` fires one now).
    ``job_retry_interval``: the wait between job retries of daprd's default failure policy
    (1 s; tests may shorten it).
    """

    def __init__(
        self,
        app_url: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        runtime_version: str = "1.16",
        app_id: str = "backend",
        api_token: str | None = None,
        app_token: str | None = None,
        auto_deliver: bool = False,
        fire_jobs: bool = False,
        retry_policy: RetryPolicy | None = None,
        job_retry_interval: float = 1.0,
        broker: InMemoryBroker | RedisStreamsBroker | None = None,
        pubsub_names: tuple[str, ...] | list[str] = ("pubsub-kafka",),
        state_stores: tuple[str, ...] | list[str] = ("statestore-postgres",),
        request_timeout: float = 10.0,
    ) -> None:
        self.app_url = app_url.rstrip("/") if app_url else None
        self.host = host
        self.port = port
        self.runtime_version = runtime_version
        self.app_id = app_id
        self.api_token = api_token
        self.app_token = app_token
        self.auto_deliver = auto_deliver
        self.fire_jobs = fire_jobs
        self.retry_policy = retry_policy or RetryPolicy()
        self.job_retry_interval = job_retry_interval
        self.broker = broker or InMemoryBroker()
        self.pubsub_names = tuple(pubsub_names)
        self.state_stores = tuple(state_stores)
        self.request_timeout = request_timeout
        #: False: the health endpoints answer as daprd does before its components are loaded
        #: (``/v1.0/healthz`` and ``/v1.0/healthz/outbound``: 500, ``ERR_*_NOT_READY``).
        self.ready = True

        self._lock = threading.RLock()
        self._subscribe_lock = threading.Lock()
        self.published: list[PublishedEvent] = []
        self.deliveries: list[Delivery] = []
        self.jobs: dict[str, dict] = {}  # name -> the job as GET returns it
        self.job_log: list[tuple[str, str, dict | None]] = []
        self.job_triggers: list[tuple[str, int]] = []  # every callback attempt: (name, status)
        self.errors: list[str] = []  # unexpected problems (handler bugs, background failures)

        self._stores: dict[str, dict[str, _StateItem]] = {s: {} for s in self.state_stores}
        self._clock_offset = 0.0
        self._fail_queue: list[tuple[int, dict | None]] = []
        self._failing_events: dict[str, int] = {}
        self._rejected: dict[str, int] = {}
        self._subscriptions: list[dict] | None = None
        self._unsubscribed: set[tuple[str, str]] = set()
        self._scheduled: dict[str, _Job] = {}
        self._firing: set[str] = set()

        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._consumers: dict[tuple[str, str, int], threading.Thread] = {}
        self._redis_consumers: list[_RedisConsumer] = []
        self._subscriber: threading.Thread | None = None
        self._scheduler: threading.Thread | None = None
        self.broker.on_append(self._on_record)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL of the sidecar, e.g. ``http://127.0.0.1:43121`` (valid after start())."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def runtime_version(self) -> str:
        return self._runtime_version

    @runtime_version.setter
    def runtime_version(self, version: str) -> None:
        minor = ".".join(version.split(".")[:2])
        if minor not in RUNTIME_VERSIONS:
            raise ValueError(f"runtime_version {version!r}: one of {', '.join(RUNTIME_VERSIONS)}")
        self._runtime_version = version if version.count(".") == 2 else f"{minor}.0"
        self._minor = int(minor.split(".")[1])

    def start(self) -> Self:
        """Bind and serve. After stop(), binds the SAME port again (outage recovery), reads
        ``/dapr/subscribe`` again and resumes consuming from the committed offsets."""
        with self._lock:
            if self._server is not None:
                return self
            server = _Server((self.host, self.port), _Handler)
            server.sidecar = self
            self.port = server.server_address[1]
            self._server = server
            self._stopping.clear()
            self._subscriptions = None
            self._unsubscribed.clear()
        self._serve_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-dapr-{self.port}",
            daemon=True,
        )
        self._serve_thread.start()
        if self.auto_deliver and self.broker.shared:
            self._subscriber = threading.Thread(
                target=self._subscribe_to_broker,
                name=f"fake-dapr-subscriber-{self.port}",
                daemon=True,
            )
            self._subscriber.start()
        elif self.auto_deliver:
            for pubsub, topic, partition in self.broker.topic_partitions():
                self._ensure_consumer(pubsub, topic, partition)
        if self.fire_jobs:
            self._scheduler = threading.Thread(
                target=self._scheduler_loop, name=f"fake-dapr-scheduler-{self.port}", daemon=True
            )
            self._scheduler.start()
        return self

    def stop(self) -> None:
        """Stop serving: the port refuses connections until start() is called again.

        A message being delivered is not committed: it is delivered again after a restart.
        """
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            self._stopping.set()
            consumers, self._consumers = list(self._consumers.values()), {}
            redis_consumers, self._redis_consumers = self._redis_consumers, []
            subscriber, self._subscriber = self._subscriber, None
            scheduler, self._scheduler = self._scheduler, None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
            self._serve_thread = None
        threads = [*consumers, subscriber, scheduler]
        threads += [t for consumer in redis_consumers for t in consumer.threads]
        for thread in threads:
            if thread is not None:
                thread.join(timeout=self.request_timeout + 5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def advance_clock(self, seconds: float) -> None:
        """Move the sidecar's clock forward (state TTLs, job due times) without sleeping."""
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
            self._fail_queue.extend([(status, body)] * count)

    def fail_events(self, *event_ids: str, times: int = 1) -> None:
        """The broker refuses the next ``times`` publishes of each of these CloudEvent ids: a
        single publish answers 500; a bulk publish answers 500 listing only those entries in
        ``failedEntries`` and keeps the others (daprd's partial failure)."""
        with self._lock:
            for event_id in event_ids:
                self._failing_events[event_id] = times

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

    def _stored_key(self, key: str) -> str:
        return f"{self.app_id}||{key}"

    def state(self, store: str = "statestore-postgres") -> dict[str, Any]:
        """This app's live (unexpired) entries of ``store``: key (as the app gave it) -> value."""
        prefix = self._stored_key("")
        with self._lock:
            now = self._now()
            return {
                k.removeprefix(prefix): v.value
                for k, v in self._stores[store].items()
                if k.startswith(prefix) and not v.expired(now)
            }

    def stored_keys(self, store: str = "statestore-postgres") -> list[str]:
        """The keys as the store holds them (``<app-id>||<key>``), live ones only."""
        with self._lock:
            now = self._now()
            return sorted(k for k, v in self._stores[store].items() if not v.expired(now))

    def etag(self, store: str, key: str) -> str | None:
        """Current ETag of a key, or None."""
        with self._lock:
            item = self._stores[store].get(self._stored_key(key))
            return None if item is None or item.expired(self._now()) else item.etag

    # ------------------------------------------------------------------ delivery to the app

    def _app_headers(self) -> dict[str, str]:
        return {"dapr-api-token": self.app_token} if self.app_token else {}

    def _require_app(self) -> str:
        if not self.app_url:
            raise RuntimeError("FakeDaprSidecar has no app_url")
        return self.app_url

    def subscriptions(self, refresh: bool = False) -> list[dict]:
        """``GET {app_url}/dapr/subscribe`` (read once, until refresh=True or a restart),
        normalised to ``{"pubsubname", "topic", "routes": {"rules": [{"match", "path"}],
        "default"}, "deadLetterTopic", "metadata", ...}``; the old ``"route"`` form becomes
        routes.default. As daprd, only a 200 is read: any other answer means no subscriptions
        (logged). An unreachable app raises ``requests.RequestException`` and nothing is kept.
        """
        with self._subscribe_lock:  # one discovery at a time, as daprd reads it once
            with self._lock:
                if self._subscriptions is not None and not refresh:
                    return copy.deepcopy(self._subscriptions)
            return self._discover()

    def _discover(self) -> list[dict]:
        resp = requests.get(
            self._require_app() + "/dapr/subscribe",
            headers=self._app_headers(),
            timeout=self.request_timeout,
        )
        raw: Any = []
        if resp.status_code == 200:
            raw = resp.json() if resp.content.strip() else []
        else:
            logger.warning(
                "fake dapr: the app answered %s to /dapr/subscribe: no subscriptions",
                resp.status_code,
            )
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

    def find_subscription(self, topic: str, pubsub: str | None = None) -> dict | None:
        """The app's subscription to ``topic`` (on ``pubsub`` when given), or None."""
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

        ``metadata`` becomes extra request headers (broker metadata such as ``__key``). An event
        no route matches, an expired one and a DROP go to the dead-letter topic (a 404 does
        not). Raises LookupError when the app has no subscription for the topic.
        """
        return self._deliver_once(topic, event, pubsub, metadata or {}, None)

    def _deliver_once(
        self,
        topic: str,
        event: dict,
        pubsub: str | None,
        metadata: dict[str, str],
        record: Record | None,
    ) -> str:
        app_url = self._require_app()
        sub = self.find_subscription(topic, pubsub)
        if sub is None:
            raise LookupError(f"the app has no subscription for topic {topic!r} ({pubsub})")
        ev = copy.deepcopy(event)
        ev["topic"] = topic
        ev["pubsubname"] = sub["pubsubname"]
        event_id = ev.get("id")
        where = (record.partition, record.offset) if record else (None, None)
        path = self.route_for(sub, ev)
        if not path or self._expired(ev):
            self._record_delivery(Delivery(topic, event_id, "", 0, DROP, sub["pubsubname"], *where))
            self._dead_letter(sub, ev, _message_metadata(record))
            return DROP
        if not path.startswith("/"):
            path = "/" + path
        headers = {
            "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
            "traceparent": str(ev.get("traceparent") or _new_traceparent()),
            "pubsubName": sub["pubsubname"],
        }
        for key, value in metadata.items():
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
        self._record_delivery(
            Delivery(topic, event_id, path, status, outcome, sub["pubsubname"], *where)
        )
        if outcome == DROP and status != 404:
            self._dead_letter(sub, ev, _message_metadata(record))
        return outcome

    def _expired(self, event: dict) -> bool:
        expiration = event.get("expiration")
        if not isinstance(expiration, str):
            return False
        try:
            return _parse_point_in_time(expiration, 0) < self._now()
        except ValueError:
            return False

    def deliver_with_redelivery(
        self,
        topic: str,
        event: dict,
        pubsub: str | None = None,
        *,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """deliver(), redelivering RETRY/ERROR as ``retry_policy`` says (forever with -1, so
        give the sidecar a finite policy to call this from a test). When the retries run out
        the event goes to the subscription's deadLetterTopic (if any). Returns the final
        outcome."""
        return self._deliver_with_policy(topic, event, pubsub, metadata or {}, None)

    def _deliver_with_policy(
        self,
        topic: str,
        event: dict,
        pubsub: str | None,
        metadata: dict[str, str],
        record: Record | None,
    ) -> str | None:
        """The resiliency policy around one message. None: the sidecar stopped meanwhile
        (the message is left uncommitted)."""
        outcome = self._deliver_once(topic, event, pubsub, metadata, record)
        retries = 0
        while outcome in (RETRY, ERROR) and self.retry_policy.allows(retries):
            retries += 1
            if record is not None and self._stopping.wait(self.retry_policy.delay(retries)):
                return None
            if record is None:
                time.sleep(self.retry_policy.delay(retries))
            outcome = self._deliver_once(topic, event, pubsub, metadata, record)
        if outcome in (RETRY, ERROR):
            sub = self.find_subscription(topic, pubsub)
            if sub is not None and sub.get("deadLetterTopic"):
                self._dead_letter(
                    sub,
                    dict(event, topic=topic, pubsubname=sub["pubsubname"]),
                    _message_metadata(record),
                )
            else:
                logger.warning("fake dapr: gave up on event %s of %s", event.get("id"), topic)
        return outcome

    def drain(self, timeout: float = 5.0) -> None:
        """With ``auto_deliver``: wait until every subscribed partition is consumed (each
        message acknowledged, dropped or dead-lettered), else AssertionError."""
        if not self.auto_deliver:
            return
        deadline = time.monotonic() + timeout
        while (waiting := self._backlog()) > 0:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{waiting} events still waiting for delivery")
            time.sleep(0.01)

    def _backlog(self) -> int:
        if self.broker.shared:
            try:
                subs = self.subscriptions()
            except requests.RequestException:
                return 1  # the app is not up: nothing has been delivered yet
            return sum(
                self.broker.backlog(self.app_id, sub["topic"])
                for sub in subs
                if sub["pubsubname"] in self.pubsub_names
            )
        with self._lock:
            unsubscribed = set(self._unsubscribed)
        return sum(
            self.broker.lag(self.app_id, pubsub, topic, partition)
            for pubsub, topic, partition in self.broker.topic_partitions()
            if (pubsub, topic) not in unsubscribed
        )

    def _record_delivery(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def _dead_letter(self, sub: dict, event: dict, query: dict[str, str] | None = None) -> None:
        """Publish to the subscription's dead-letter topic (with the message's metadata)."""
        dlt = sub.get("deadLetterTopic")
        if not dlt:
            return
        self._record_publish(
            PublishedEvent(
                pubsub=sub["pubsubname"],
                topic=dlt,
                event=copy.deepcopy(event),
                headers=_Headers(),
                query=dict(query or {}),
                raw_content_type=CLOUDEVENTS_CONTENT_TYPE,
                dead_letter=True,
            )
        )

    def _record_publish(self, item: PublishedEvent) -> None:
        self.broker.append(item)  # sets its partition and offset
        with self._lock:
            self.published.append(item)

    # ------------------------------------------------------------------ consumers (Kafka model)

    def _on_record(self, record: Record) -> None:
        if self.auto_deliver and not self.broker.shared:
            self._ensure_consumer(record.pubsub, record.topic, record.partition)

    def _ensure_consumer(self, pubsub: str, topic: str, partition: int) -> None:
        """One consumer thread per (pubsub, topic, partition) while running."""
        key = (pubsub, topic, partition)
        with self._lock:
            if self._server is None or key in self._consumers:
                return
            thread = threading.Thread(
                target=self._consume,
                args=key,
                name=f"fake-dapr-{topic}-{partition}",
                daemon=True,
            )
            self._consumers[key] = thread
        thread.start()

    def _consume(self, pubsub: str, topic: str, partition: int) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    sub = self.find_subscription(topic, pubsub)
                except requests.RequestException:  # the app is not up yet
                    self._stopping.wait(0.2)
                    continue
                if sub is None:  # daprd never consumes a topic the app does not subscribe to
                    with self._lock:
                        self._unsubscribed.add((pubsub, topic))
                    return
                record = self.broker.next_record(self.app_id, pubsub, topic, partition)
                if record is None:
                    self._stopping.wait(0.02)
                    continue
                if self._process(record):
                    self.broker.commit(self.app_id, record)
        except Exception as exc:  # keep the failure visible to the test
            logger.exception("fake dapr: consumer of %s/%s failed", topic, partition)
            with self._lock:
                self.errors.append(f"consumer of {topic}/{partition}: {exc!r}")

    # ------------------------------------------------------------------ consumers (pubsub.redis)

    def _subscribe_to_broker(self) -> None:
        """daprd at start: read the app's subscriptions (waiting for the app), then subscribe
        to each topic of a pub/sub this sidecar has (consumer group = the app id)."""
        while not self._stopping.is_set():
            try:
                subs = self.subscriptions()
                break
            except requests.RequestException:  # the app is not up yet
                self._stopping.wait(0.2)
        else:
            return
        for sub in subs:
            if sub["pubsubname"] not in self.pubsub_names:
                continue
            consumer = _RedisConsumer(self, sub["pubsubname"], sub["topic"])
            with self._lock:
                if self._stopping.is_set():
                    return
                self._redis_consumers.append(consumer)
            consumer.start()

    def _process(self, record: Record) -> bool:
        """Deliver one record with the retry policy; False if the sidecar stopped meanwhile."""
        item = record.published
        if not isinstance(item.event, dict):
            return True  # a raw non-JSON payload: nothing this stand-in can route
        meta = {
            "__topic": record.topic,
            "__partition": str(record.partition),
            "__offset": str(record.offset),
        }
        if record.key is not None:
            meta["__key"] = record.key
        outcome = self._deliver_with_policy(record.topic, item.event, item.pubsub, meta, record)
        return outcome is not None

    # ------------------------------------------------------------------ jobs (scheduler)

    def trigger_job(self, name: str) -> int:
        """Fire a job now, as the scheduler does when it is due: ``POST {app_url}/job/{name}``
        with exactly the job's data, retried per the job's failure policy (daprd's default: 3
        retries, ``job_retry_interval`` apart). 2xx and 404 are done. Then the job moves on: a
        one-shot job is removed, as is one whose ``repeats`` are used up or whose ``ttl`` has
        passed. Returns the last HTTP status (0 if the app was unreachable). KeyError if the
        job does not exist.
        """
        with self._lock:
            job = self._scheduled[name]
            self._firing.add(name)
        try:
            return self._run_trigger(job)
        finally:
            with self._lock:
                self._firing.discard(name)

    def _run_trigger(self, job: _Job) -> int:
        body = json.dumps(job.data, separators=(",", ":")).encode() if job.has_data else b""
        retries = 0
        while True:
            status = self._call_job(job.name, body)
            if 200 <= status <= 299 or status == 404:
                break
            if job.max_retries != -1 and retries >= job.max_retries:
                logger.warning("fake dapr: job %s dropped this trigger after %s", job.name, status)
                break
            retries += 1
            if self._stopping.wait(job.retry_interval):
                return status
            with self._lock:
                if self._scheduled.get(job.name) is not job:
                    return status  # deleted or replaced meanwhile
        with self._lock:
            self._advance(job)
        return status

    def _call_job(self, name: str, body: bytes) -> int:
        headers = {"Content-Type": "application/json", **self._app_headers()}
        try:
            resp = requests.post(
                f"{self._require_app()}/job/{quote(name, safe='')}",
                data=body,
                headers=headers,
                timeout=self.request_timeout,
            )
            status = resp.status_code
        except requests.RequestException:
            status = 0
        with self._lock:
            self.job_triggers.append((name, status))
        return status

    def _advance(self, job: _Job) -> None:
        """After a trigger: the next due time, or the end of the job (go-etcd-cron)."""
        if self._scheduled.get(job.name) is not job:
            return
        job.count += 1
        done = job.schedule is None or (job.repeats is not None and job.count >= job.repeats)
        if not done:
            job.due_at = job.schedule.next_after(job.due_at)
            done = job.expires_at is not None and job.due_at > job.expires_at
        if done:
            del self._scheduled[job.name]
            self.jobs.pop(job.name, None)

    def _scheduler_loop(self) -> None:
        while not self._stopping.wait(0.05):
            now = self._now()
            with self._lock:
                due = [
                    job
                    for name, job in self._scheduled.items()
                    if job.due_at <= now and name not in self._firing
                ]
                self._firing.update(job.name for job in due)
            for job in due:
                threading.Thread(target=self._background_trigger, args=(job,), daemon=True).start()

    def _background_trigger(self, job: _Job) -> None:
        try:
            self._run_trigger(job)
        except Exception as exc:
            logger.exception("fake dapr: trigger of job %s failed", job.name)
            with self._lock:
                self.errors.append(f"trigger of job {job.name}: {exc!r}")
        finally:
            with self._lock:
                self._firing.discard(job.name)

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

    def _jobs_prefixes(self) -> tuple[str, ...]:
        stable = ("/v1.0/jobs/",) if self._minor >= 18 else ()
        return (*stable, "/v1.0-alpha1/jobs/")

    def _bulk_prefixes(self) -> tuple[str, ...]:
        stable = ("/v1.0/publish/bulk/",) if self._minor >= 17 else ()
        return (*stable, "/v1.0-alpha1/publish/bulk/")

    def _route(self, method: str, target: str, headers: _Headers, body: bytes) -> _Response:
        split = urlsplit(target)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))

        if path.rstrip("/") in _HEALTH_PATHS:
            return self._health(path.rstrip("/"))
        if self.api_token is not None:
            sent = headers.get("dapr-api-token") or ""
            if not hmac.compare_digest(sent.encode(), self.api_token.encode()):
                raise _DaprError(401, "ERR_API_TOKEN", "invalid api token")

        if path == "/v1.0/metadata":
            self._allow(method, "GET")
            return _json_response(200, self._metadata())
        for prefix in self._bulk_prefixes():
            if path.startswith(prefix):
                self._allow(method, "POST")
                pubsub, topic = self._two_parts(path[len(prefix) :])
                return self._bulk_publish(pubsub, topic, headers, query, body)
        if path.startswith("/v1.0/publish/"):
            self._allow(method, "POST")
            pubsub, topic = self._two_parts(path[len("/v1.0/publish/") :])
            return self._publish(pubsub, topic, headers, query, body)
        if path.startswith("/v1.0/state/"):
            return self._state(method, path[len("/v1.0/state/") :], headers, query, body)
        for prefix in self._jobs_prefixes():
            if path.startswith(prefix):
                return self._jobs(method, unquote(path[len(prefix) :]), body)
        raise _no_such_route()

    def _health(self, path: str) -> _Response:
        """daprd's ``onGetHealthz`` / ``onGetOutboundHealthz``: 204, or 500 while not ready."""
        if self.ready:
            return _Response(204)
        if path.endswith("/outbound"):
            raise _DaprError(500, "ERR_OUTBOUND_HEALTH_NOT_READY", "dapr outbound is not ready")
        raise _DaprError(500, "ERR_HEALTH_NOT_READY", "dapr is not ready: [runtime]")

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:  # daprd: a method no route serves falls through too
            raise _no_such_route()

    @staticmethod
    def _two_parts(rest: str) -> tuple[str, str]:
        first, _, second = rest.partition("/")
        if not first or not second:
            raise _no_such_route()
        return unquote(first), unquote(second)

    def _metadata(self) -> dict:
        with self._lock:
            subs = list(self._subscriptions or [])
        pubsub_type = "pubsub.redis" if self.broker.shared else "pubsub.kafka"
        components = [
            {"name": n, "type": pubsub_type, "version": "v1", "capabilities": []}
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
            "runtimeVersion": self.runtime_version,
            "enabledFeatures": [],
            "components": components,
            "subscriptions": subs,
            "extended": {"daprRuntimeVersion": self.runtime_version},
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

        if meta.get("rawPayload", "").lower() == "true":  # no envelope at all
            if media == "" or _is_json_media(media):
                try:
                    return json.loads(body)
                except ValueError:
                    return body.decode("utf-8", "replace")
            return body

        if media == CLOUDEVENTS_CONTENT_TYPE:
            try:
                obj = json.loads(body)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):  # daprd: contribPubsub.FromCloudEvent fails
                raise _DaprError(500, "ERR_PUBSUB_CLOUD_EVENTS_SER", "cannot create cloudevent")
            event = dict(obj)  # the app's id is kept
            event.setdefault("time", _rfc3339(now))
            if "traceid" not in event:
                event["traceid"] = event["traceparent"] = tp
            event.setdefault("tracestate", "")
            event["topic"] = topic
            event["pubsubname"] = pubsub
            event.setdefault("source", "Dapr")
            event.setdefault("type", "com.dapr.event.sent")
            event.setdefault("specversion", "1.0")
        else:
            media = media or "text/plain"
            data_key = "data"
            if _is_json_media(media):
                try:
                    data: Any = json.loads(body)
                except ValueError:
                    data = body.decode("utf-8", "replace")  # daprd keeps it as a string
            elif media == "application/octet-stream":
                data, data_key = base64.b64encode(body).decode(), "data_base64"
            else:
                data = body.decode("utf-8", "replace")
            event = {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),  # a new random id on every publish, as daprd does
                "source": self.app_id,
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
            event.setdefault("expiration", _rfc3339(now + ttl))
        return event

    def _take_event_failure(self, event: Any) -> bool:
        """Whether the broker refuses this event now (``fail_events``); uses one refusal."""
        event_id = event.get("id") if isinstance(event, dict) else None
        left = self._failing_events.get(event_id, 0)
        if left <= 0:
            return False
        self._failing_events[event_id] = left - 1
        return True

    def _publish(
        self, pubsub: str, topic: str, headers: _Headers, query: dict[str, str], body: bytes
    ) -> _Response:
        self._check_pubsub(pubsub)
        meta = {k[len("metadata.") :]: v for k, v in query.items() if k.startswith("metadata.")}
        content_type = headers.get("content-type") or ""
        event = self._make_event(
            pubsub, topic, body, content_type, meta, headers.get("traceparent")
        )
        broker_error = _DaprError(
            500,
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            f"error when publish to topic {topic} in pubsub {pubsub}: injected failure",
        )
        with self._lock:
            status = self._rejected.get(topic)
            if status is not None:
                raise self._rejection(status, topic)
            if self._fail_queue:
                status, custom = self._fail_queue.pop(0)
                if custom is not None:
                    return _json_response(status, custom)
                broker_error.status = status
                raise broker_error
            if self._take_event_failure(event):
                raise broker_error
        self._record_publish(
            PublishedEvent(pubsub, topic, event, headers, dict(query), content_type)
        )
        return _Response(204)

    @staticmethod
    def _rejection(status: int, topic: str) -> _DaprError:
        code = {403: "ERR_PUBSUB_FORBIDDEN", 404: "ERR_PUBSUB_NOT_FOUND"}.get(
            status, "ERR_PUBSUB_PUBLISH_MESSAGE"
        )
        return _DaprError(status, code, f"topic {topic} is rejected (fake dapr)")

    def _bulk_publish(
        self, pubsub: str, topic: str, headers: _Headers, query: dict[str, str], body: bytes
    ) -> _Response:
        self._check_pubsub(pubsub)
        try:
            entries = json.loads(body)
        except ValueError:
            entries = None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise _DaprError(400, "ERR_PUBSUB_EVENTS_SER", "error when unmarshaling the request")
        req_meta = {k[len("metadata.") :]: v for k, v in query.items() if k.startswith("metadata.")}
        seen: set[str] = set()
        built: list[tuple[str, PublishedEvent]] = []
        for entry in entries:
            entry_id = entry.get("entryId")
            content_type = entry.get("contentType")
            raw = entry.get("event")
            media = _media_type(content_type)
            if not media:  # daprd: ConvertEventToBytes -> content type mismatch
                raise _DaprError(
                    400, "ERR_PUBSUB_EVENTS_SER", "error when marshalling cloud event envelope"
                )
            if not isinstance(entry_id, str) or not entry_id or entry_id in seen:
                raise _DaprError(
                    400, "ERR_PUBSUB_EVENTS_SER", "entryId is duplicated or not present for entry"
                )
            seen.add(entry_id)
            if _is_json_media(media):
                raw_bytes = json.dumps(raw).encode()
            elif isinstance(raw, str):
                raw_bytes = raw.encode()
            else:
                raise _DaprError(
                    400, "ERR_PUBSUB_EVENTS_SER", "error when marshalling cloud event envelope"
                )
            entry_meta = {str(k): str(v) for k, v in (entry.get("metadata") or {}).items()}
            meta = {**req_meta, **entry_meta}
            event = self._make_event(
                pubsub, topic, raw_bytes, content_type, meta, headers.get("traceparent")
            )
            entry_query = dict(query)
            entry_query.update({f"metadata.{k}": v for k, v in entry_meta.items()})
            built.append(
                (entry_id, PublishedEvent(pubsub, topic, event, headers, entry_query, content_type))
            )

        def failed(status: int, entry_ids: list[str], error: str) -> _Response:
            failed_entries = [{"entryId": entry_id, "error": error} for entry_id in entry_ids]
            return _json_response(
                status, {"failedEntries": failed_entries, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE"}
            )

        all_ids = [entry_id for entry_id, _ in built]
        with self._lock:
            status = self._rejected.get(topic)
            if status is not None:
                if status in (400, 403, 404):
                    raise self._rejection(status, topic)
                return failed(status, all_ids, f"topic {topic} is rejected (fake dapr)")
            if self._fail_queue:
                status, custom = self._fail_queue.pop(0)
                if custom is not None:
                    return _json_response(status, custom)
                return failed(status, all_ids, "injected broker failure")
            refused = [entry_id for entry_id, item in built if self._take_event_failure(item.event)]
        for entry_id, item in built:
            if entry_id not in refused:
                self._record_publish(item)
        if refused:
            return failed(500, refused, "injected broker failure")
        return _Response(204)

    # ------------------------------------------------------------------ state

    def _store(self, name: str) -> dict[str, _StateItem]:
        if name not in self._stores:
            raise _DaprError(400, "ERR_STATE_STORE_NOT_FOUND", f"state store {name} is not found")
        return self._stores[name]

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
            self._allow(method, "GET", "DELETE")
            key = self._check_key({"key": unquote(key_raw)})
            if method == "GET":
                return self._get(store, key)
            etag = headers.get("if-match") or None
            self._apply_delete(store, key, etag, _delete_failure(key))
            return _Response(204)

    def _get(self, store: dict[str, _StateItem], key: str) -> _Response:
        stored = self._stored_key(key)
        item = store.get(stored)
        if item is not None and item.expired(self._now()):
            del store[stored]
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
            item = store.get(self._stored_key(key))
            if item is None or item.expired(now):
                out.append({"key": key})
            else:
                out.append({"key": key, "data": item.value, "etag": item.etag})
        return _json_response(200, out)

    @staticmethod
    def _parse_ttl(meta: Any, error: _DaprError) -> int | None:
        if not isinstance(meta, dict) or meta.get("ttlInSeconds") in (None, ""):
            return None
        raw = meta["ttlInSeconds"]
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise error
        try:
            ttl = int(raw)
        except ValueError:
            raise error from None
        if ttl < -1:
            raise error
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

    def _apply_set(self, store: dict[str, _StateItem], item: dict, fail: _StoreFailure) -> None:
        """Apply one save to ``store`` (a working copy) with PostgreSQL v2 semantics; a failure
        of the store is answered as ``fail`` says."""
        key = self._stored_key(self._check_key(item))
        etag = self._etag_of(item)
        concurrency = self._concurrency(item)
        ttl = self._parse_ttl(item.get("metadata"), fail(500, "error parsing TTL"))
        now = self._now()
        current = store.get(key)
        if current is not None and current.expired(now):
            current = None
        if etag is not None:
            # An etag that is not a UUID, or not the current one, is a mismatch.
            if current is None or current.etag != etag:
                raise fail(409, _ETAG_MISMATCH)
        elif concurrency == "first-write" and current is not None:
            raise fail(500, "no item was updated")  # the upsert's WHERE matched no row
        expires = now + ttl if ttl is not None and ttl > 0 else None
        store[key] = _StateItem(copy.deepcopy(item.get("value")), str(uuid.uuid4()), expires)

    def _apply_delete(
        self, store: dict[str, _StateItem], key: str, etag: str | None, fail: _StoreFailure
    ) -> None:
        stored = self._stored_key(key)
        current = store.get(stored)
        if current is not None and current.expired(self._now()):
            current = None
        if etag is not None and (current is None or current.etag != etag):
            raise fail(409, _ETAG_MISMATCH)
        store.pop(stored, None)

    def _save(self, name: str, store: dict[str, _StateItem], body: bytes) -> _Response:
        try:
            items = json.loads(body)
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "the body must be a JSON array")
        work = dict(store)
        for item in items:
            self._apply_set(work, item, _save_failure(name))
        self._stores[name] = work
        return _Response(204)

    def _transaction(self, name: str, store: dict[str, _StateItem], body: bytes) -> _Response:
        try:
            req = json.loads(body)
        except ValueError:
            req = None
        if not isinstance(req, dict) or not isinstance(req.get("operations", []), list):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "invalid transaction body")
        operations = req.get("operations") or []
        for op in operations:  # daprd checks the request before the store runs it
            kind = op.get("operation") if isinstance(op, dict) else None
            if kind not in ("upsert", "delete"):
                raise _DaprError(
                    400,
                    "ERR_NOT_SUPPORTED_STATE_OPERATION",
                    f"operation type {kind} not supported",
                )
            self._check_key(op.get("request"))
        work = dict(store)
        for op in operations:
            request = op["request"]
            if op["operation"] == "upsert":
                self._apply_set(work, request, _transaction_failure)
            else:
                key = self._check_key(request)
                self._apply_delete(work, key, self._etag_of(request), _transaction_failure)
        self._stores[name] = work
        return _Response(204)

    # ------------------------------------------------------------------ jobs

    def _jobs(self, method: str, name: str, body: bytes) -> _Response:
        if not name or _BAD_JOB_NAME.search(name):
            raise _DaprError(400, "DAPR_SCHEDULER_JOB_NAME", f"invalid job name {name!r}")
        if method == "POST":
            return self._schedule_job(name, body)
        if method == "GET":
            with self._lock:
                job = self.jobs.get(name)
                if job is None:
                    raise _DaprError(
                        500, "DAPR_SCHEDULER_GET_JOB", f"failed to get job due to: {name} not found"
                    )
                return _json_response(200, job)
        if method == "DELETE":
            with self._lock:
                self.jobs.pop(name, None)
                self._scheduled.pop(name, None)
                self.job_log.append(("delete", name, None))
            return _Response(204)
        raise _no_such_route()

    def _schedule_job(self, name: str, body: bytes) -> _Response:
        try:
            req = json.loads(body)
        except ValueError:
            req = None
        if not isinstance(req, dict):
            raise _DaprError(400, "ERR_MALFORMED_REQUEST", "the job must be a JSON object")
        if req.get("schedule") is None and req.get("dueTime") is None:
            raise _DaprError(400, "DAPR_SCHEDULER_SCHEDULE_EMPTY", "Schedule is empty")
        try:
            job = self._parse_job(name, req)
        except ValueError as exc:
            raise _DaprError(
                400, "DAPR_SCHEDULER_SCHEDULE_JOB", f"failed to schedule job due to: {exc}"
            ) from None
        public: dict[str, Any] = {"name": name}
        for key in ("dueTime", "schedule", "repeats", "ttl", "data", "failurePolicy"):
            if req.get(key) is not None:
                public[key] = copy.deepcopy(req[key])
        with self._lock:
            exists = name in self.jobs
            if exists and self._minor >= 16 and req.get("overwrite") is not True:
                raise _DaprError(409, "DAPR_SCHEDULER_SCHEDULE_JOB", f"job {name} already exists")
            self.jobs[name] = public
            self._scheduled[name] = job
            self.job_log.append(("schedule", name, copy.deepcopy(req)))
        return _Response(204)

    def _parse_job(self, name: str, req: dict) -> _Job:
        """go-etcd-cron's rules for a new job (``Builder.Parse``)."""
        schedule_text, due_text, ttl_text = req.get("schedule"), req.get("dueTime"), req.get("ttl")
        repeats = req.get("repeats")
        for label, value in (("schedule", schedule_text), ("dueTime", due_text), ("ttl", ttl_text)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{label} must be a string")
        if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int)):
            raise ValueError("repeats must be an integer")
        if schedule_text is None and repeats is not None and repeats > 1:
            raise ValueError("job must have a schedule to repeat")
        if repeats is not None and repeats < 1:
            raise ValueError("defined repeats must be greater than 0")
        if schedule_text is None and ttl_text is not None:
            raise ValueError("job must have a schedule to have a ttl")
        schedule = _Schedule(schedule_text) if schedule_text is not None else None
        now = float(int(self._now()))  # the scheduler's clock, to the second
        due_at = _parse_point_in_time(due_text, now) if due_text is not None else None
        expires_at = None
        if ttl_text is not None:
            expires_at = _parse_point_in_time(ttl_text, due_at if due_at is not None else now)
            if due_at is not None and due_at > expires_at:
                raise ValueError("ttl must be greater than due time")
        if due_at is None:  # the clock starts now; the first trigger is the next tick
            due_at = schedule.next_after(now)
        retry_interval, max_retries = _job_failure_policy(req.get("failurePolicy"))
        if req.get("failurePolicy") is None:
            retry_interval = self.job_retry_interval
        return _Job(
            name=name,
            data=copy.deepcopy(req.get("data")),
            has_data="data" in req,
            due_at=due_at,
            schedule=schedule,
            repeats=repeats,
            expires_at=expires_at,
            retry_interval=retry_interval,
            max_retries=max_retries,
        )


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in sidecar by hand beside the app (see README, "Events and Dapr")::

        python -m tests.support.fake_dapr --port 3500 --app-url http://127.0.0.1:8000 \\
            --runtime-version 1.18 --deliver

    It prints every CloudEvent published, every delivery and every job trigger. With
    ``--deliver`` it delivers events to the app's subscribed routes and fires due jobs
    (``POST /job/<name>``), as daprd and the Scheduler would. Never part of the app.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Stand-in Dapr sidecar (tests only).")
    parser.add_argument("--port", type=int, default=3500)
    parser.add_argument("--app-url", default="http://127.0.0.1:8000")
    parser.add_argument("--app-id", default="tideline-web", help="The app's DAPR_APP_ID.")
    parser.add_argument(
        "--runtime-version",
        default="1.16",
        help="daprd release to behave as (1.14-1.18): 1.18 serves /v1.0/jobs, 1.14-1.17 only "
        "/v1.0-alpha1/jobs (the app reads the release from /v1.0/metadata).",
    )
    parser.add_argument("--api-token", default=None, help="DAPR_API_TOKEN the app must send.")
    parser.add_argument("--app-token", default=None, help="APP_API_TOKEN sent to the app.")
    parser.add_argument(
        "--deliver", action="store_true", help="Deliver events to the app and fire due jobs."
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=-1,
        help="Redeliveries of an event the app does not acknowledge, then its dead-letter "
        "topic (-1: forever; dapr/resiliency.yaml's inbound policy allows 10).",
    )
    parser.add_argument(
        "--retry-interval", type=float, default=0.5, help="Seconds before the first redelivery."
    )
    parser.add_argument(
        "--retry-max-interval",
        type=float,
        default=60.0,
        help="Exponential backoff (x1.5) up to this many seconds; 0: constant.",
    )
    parser.add_argument("--partitions", type=int, default=1, help="Partitions per topic.")
    parser.add_argument(
        "--broker",
        default="memory",
        help="memory (default: Kafka's model, this sidecar only), or a Redis URL such as "
        "redis://127.0.0.1:6379/0?keyPrefix=dev-&processingTimeout=5s&redeliverInterval=1s: "
        "Dapr's pubsub.redis, shared by every stand-in pointed at it (one consumer group per "
        "--app-id).",
    )
    args = parser.parse_args(argv)
    if args.broker == "memory":
        broker: InMemoryBroker | RedisStreamsBroker = InMemoryBroker(partitions=args.partitions)
    elif args.broker.startswith("redis://"):
        broker = RedisStreamsBroker(args.broker, partitions=args.partitions)
    else:
        parser.error("--broker is memory or a redis:// URL")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sidecar = FakeDaprSidecar(
        args.app_url,
        port=args.port,
        app_id=args.app_id,
        runtime_version=args.runtime_version,
        api_token=args.api_token,
        app_token=args.app_token,
        auto_deliver=args.deliver,
        fire_jobs=args.deliver,
        retry_policy=RetryPolicy(
            max_retries=args.max_retries,
            interval=args.retry_interval,
            max_interval=args.retry_max_interval or None,
        ),
        broker=broker,
    ).start()
    print(
        f"stand-in daprd {sidecar.runtime_version} on {sidecar.url} for app {args.app_url} "
        f"(Ctrl-C to stop)",
        flush=True,
    )
    seen = {"published": 0, "deliveries": 0, "jobs": 0}
    try:
        while True:
            with sidecar._lock:
                published = sidecar.published[seen["published"] :]
                deliveries = sidecar.deliveries[seen["deliveries"] :]
                triggers = sidecar.job_triggers[seen["jobs"] :]
            for item in published:
                event = item.event if isinstance(item.event, dict) else {}
                fields = {k: event.get(k) for k in ("id", "type", "subject")}
                print(json.dumps({"published": item.topic, **fields}), flush=True)
            for d in deliveries:
                print(
                    json.dumps(
                        {
                            "delivered": d.topic,
                            "id": d.event_id,
                            "path": d.path,
                            "status": d.http_status,
                            "outcome": d.outcome,
                        }
                    ),
                    flush=True,
                )
            for name, status in triggers:
                print(json.dumps({"job": name, "status": status}), flush=True)
            seen["published"] += len(published)
            seen["deliveries"] += len(deliveries)
            seen["jobs"] += len(triggers)
            time.sleep(0.2)
    except KeyboardInterrupt:
        sidecar.stop()


if __name__ == "__main__":
    main()
