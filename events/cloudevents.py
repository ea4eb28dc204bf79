"""CloudEvents 1.0 envelopes: building them for publishing, validating them on delivery."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .payloads import json_value
from .registry import REQUIRED_DATA, EventType, cloudevent_type, event_type_from_cloudevent

CONTENT_TYPE = "application/cloudevents+json"
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")
#: Nesting a delivered body may have (objects and arrays): a CloudEvent of the app is 4 deep.
MAX_JSON_DEPTH = 32
#: ``ProcessedEvent.event_id`` and ``ConsumerFailure.event_id``: a longer id is stored hashed.
MAX_EVENT_ID_LENGTH = 255
HASHED_ID_PREFIX = "sha256:"
#: The range of a database id (a 64-bit signed integer, ``BigAutoField``).
MAX_DATABASE_INT = 2**63 - 1


class MalformedEvent(ValueError):
    """A delivery that can never be processed: answered DROP, never retried."""


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    event_type: EventType
    data: dict[str, Any]
    topic: str | None
    raw: dict[str, Any]


def build_envelope(row) -> dict[str, Any]:
    """The CloudEvent for an outbox row; its ``id`` is the row's UUID, stable on re-publish.

    A row of the dead-letter topic holds a dead-lettered CloudEvent, published as it was
    delivered (``events.outbox.emit_dead_letter``).
    """
    if row.topic == settings.EVENT_DEAD_LETTER_TOPIC:
        return dict(row.data)
    return {
        "specversion": "1.0",
        "id": str(row.id),
        "source": settings.DAPR_APP_ID,
        "type": cloudevent_type(row.event_type),
        "subject": row.partition_key,
        "time": json_value(row.created_at),
        "datacontenttype": "application/json",
        "topic": row.topic,
        "data": row.data,
    }


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def reject_overflow(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def check_storable(value: Any) -> None:
    """Raise ``ValueError`` when ``value`` nests deeper than ``MAX_JSON_DEPTH`` or holds a
    string no database column can store (NUL, a lone surrogate). Iterative: no recursion."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValueError("a string holds a NUL character")
            try:
                item.encode()
            except UnicodeEncodeError as exc:
                raise ValueError("a string holds a lone surrogate") from exc


def load_json(body: bytes | str) -> Any:
    """Parse a delivered body: finite numbers only, at most ``MAX_JSON_DEPTH`` deep, every
    string storable; ``ValueError`` saying why otherwise (never ``RecursionError``)."""
    try:
        value = json.loads(body, parse_constant=reject_constant, parse_float=reject_overflow)
    except RecursionError as exc:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from exc
    check_storable(value)
    return value


def storable_event_id(event_id: str) -> str:
    """The id as the idempotency records store it: a longer one than the column holds is
    replaced by its SHA-256, so redeliveries of it still match."""
    if len(event_id) <= MAX_EVENT_ID_LENGTH:
        return event_id
    return HASHED_ID_PREFIX + hashlib.sha256(event_id.encode()).hexdigest()


def parse_envelope(body: bytes | str | dict) -> CloudEvent:
    """Validate a delivered CloudEvent; raises ``MalformedEvent`` saying why."""
    try:
        if isinstance(body, dict):
            check_storable(body)
            envelope = body
        else:
            envelope = load_json(body or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"body is not acceptable JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise MalformedEvent("body is not a JSON object")
    missing = [name for name in REQUIRED_ATTRIBUTES if not envelope.get(name)]
    if missing:
        raise MalformedEvent(f"missing CloudEvent attributes: {', '.join(missing)}")
    if envelope["specversion"] != "1.0":
        raise MalformedEvent(f"unsupported specversion {envelope['specversion']!r}")
    event_type = event_type_from_cloudevent(str(envelope["type"]))
    if event_type is None:
        raise MalformedEvent(f"unknown event type {envelope['type']!r}")
    data = envelope.get("data")
    if isinstance(data, str):  # some brokers hand JSON data over as a string
        try:
            data = load_json(data)
        except ValueError as exc:
            raise MalformedEvent(f"data is not acceptable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedEvent("data is missing or not a JSON object")
    for name, expected in REQUIRED_DATA[event_type].items():
        value = data.get(name)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise MalformedEvent(f"data.{name} is missing or not a {expected.__name__}")
        if expected is int and not -MAX_DATABASE_INT - 1 <= value <= MAX_DATABASE_INT:
            raise MalformedEvent(f"data.{name} is out of the range of a database id")
    return CloudEvent(
        id=storable_event_id(str(envelope["id"])),
        source=str(envelope["source"]),
        type=str(envelope["type"]),
        event_type=event_type,
        data=data,
        topic=envelope.get("topic"),
        raw=envelope,
    )
