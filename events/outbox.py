"""Writing events: ``emit`` stores outbox rows in the caller's transaction.

Only services call ``emit``. Nothing here does network I/O: rows are delivered by the relay
after commit (see ``events.relay``), so a rolled-back change publishes nothing.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from .models import OutboxEvent
from .registry import EventType

logger = logging.getLogger(__name__)


def emit(event_type: EventType, data: dict, *, partition_key: str | int) -> list[OutboxEvent]:
    """Write one outbox row per topic of ``event_type``; must run inside a transaction."""
    from .routing import topics_for  # the table imports the services, which import this

    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("events.emit() must be called inside transaction.atomic().")
    rows = [
        OutboxEvent(
            event_type=str(event_type), topic=topic, partition_key=str(partition_key), data=data
        )
        for topic in topics_for(EventType(event_type), data)
    ]
    OutboxEvent.objects.bulk_create(rows)
    for row in rows:
        logger.info(
            "event queued event_id=%s type=%s topic=%s key=%s",
            row.id,
            row.event_type,
            row.topic,
            row.partition_key,
        )
    from .relay import request_relay

    transaction.on_commit(request_relay, robust=True)
    return rows


def emit_dead_letter(envelope: dict, *, event_type: str, partition_key: str) -> OutboxEvent:
    """Write the outbox row that publishes a dead-lettered CloudEvent, as it was delivered
    (its ``id`` kept), to ``EVENT_DEAD_LETTER_TOPIC``; must run inside a transaction.

    The failure policy calls it when the app's own retries spend a consumer's budget
    (``events.failures``), as daprd does for an event the app answers DROP.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("events.emit_dead_letter() must be called inside transaction.atomic().")
    row = OutboxEvent.objects.create(
        event_type=event_type,
        topic=settings.EVENT_DEAD_LETTER_TOPIC,
        partition_key=partition_key[:64],
        data=envelope,
    )
    logger.info(
        "dead letter queued event_id=%s type=%s topic=%s key=%s",
        envelope.get("id"),
        event_type,
        row.topic,
        row.partition_key,
    )
    from .relay import request_relay

    transaction.on_commit(request_relay, robust=True)
    return row
