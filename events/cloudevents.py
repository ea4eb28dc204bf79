"""CloudEvents 1.0 envelopes: building them for publishing, validating them on delivery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .payloads import json_value
from .registry import REQUIRED_DATA, EventType, cloudevent_type, event_type_from_cloudevent

CONTENT_TYPE = "application/cloudevents+json"
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")


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


def parse_envelope(body: bytes | str | dict) -> CloudEvent:
    """Validate a delivered CloudEvent; raises ``MalformedEvent`` saying why."""
    if isinstance(body, dict):
        envelope = body
    else:
        try:
            envelope = json.loads(body or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedEvent(f"body is not JSON: {exc}") from exc
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
            data = json.loads(data)
        except ValueError as exc:
            raise MalformedEvent("data is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedEvent("data is missing or not a JSON object")
    for name, expected in REQUIRED_DATA[event_type].items():
        value = data.get(name)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise MalformedEvent(f"data.{name} is missing or not a {expected.__name__}")
    return CloudEvent(
        id=str(envelope["id"]),
        source=str(envelope["source"]),
        type=str(envelope["type"]),
        event_type=event_type,
        data=data,
        topic=envelope.get("topic"),
        raw=envelope,
    )
