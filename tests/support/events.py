"""Capturing the events a block of code emits (as Zulip's ``capture_send_event_calls``).

``capture_events()`` records the outbox rows written inside its block, in the order they
were written, so a test asserts what a service emitted without querying the outbox::

    with capture_events() as captured:
        services.task_complete(task=task)

    [event] = captured.events  # one emit() call: its rows grouped, one per topic
    assert event.event_type == EventType.TASK_COMPLETED
    assert event.topics == ["task-events", "task-updates"]

It reads the outbox table, so it sees what survives the block: rows rolled back inside it
are not there, and rows written by other threads (a live server, a sidecar) in the meantime
are. ``emit`` only writes rows and asks for a relay on commit; nest the block with
pytest-django's ``django_capture_on_commit_callbacks`` to see or run that request too.
Inside the block ``captured.rows`` reads the rows written so far; on leaving it, the capture
is kept as it stands and later writes no longer count.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db.models import Max

from events.models import OutboxEvent

__all__ = ["CapturedEvents", "EmittedEvent", "EmittedRow", "capture_events"]


@dataclass(frozen=True)
class EmittedRow:
    """One outbox row: one event for one topic."""

    id: uuid.UUID
    event_type: str
    topic: str
    partition_key: str
    data: dict


@dataclass
class EmittedEvent:
    """One event as ``emit`` wrote it: the same type, key and data on each of its topics."""

    event_type: str
    partition_key: str
    data: dict
    topics: list[str] = field(default_factory=list)
    ids: list[uuid.UUID] = field(default_factory=list)


class CapturedEvents:
    """The outbox rows written after ``after_seq``: live inside the block, kept after it."""

    def __init__(self, after_seq: int) -> None:
        self._after_seq = after_seq
        self._kept: list[EmittedRow] | None = None

    @property
    def rows(self) -> list[EmittedRow]:
        """Every row, one per (event, topic), in the order they were written."""
        if self._kept is not None:
            return list(self._kept)
        return [
            EmittedRow(
                id=row.id,
                event_type=row.event_type,
                topic=row.topic,
                partition_key=row.partition_key,
                data=row.data,
            )
            for row in OutboxEvent.objects.filter(seq__gt=self._after_seq).order_by("seq")
        ]

    @property
    def events(self) -> list[EmittedEvent]:
        """The rows grouped by event: ``emit`` writes an event's rows together, one per topic."""
        found: list[EmittedEvent] = []
        for row in self.rows:
            last = found[-1] if found else None
            same_event = (
                last is not None
                and last.event_type == row.event_type
                and last.partition_key == row.partition_key
                and last.data == row.data
                and row.topic not in last.topics
            )
            if not same_event:
                last = EmittedEvent(row.event_type, row.partition_key, row.data)
                found.append(last)
            last.topics.append(row.topic)
            last.ids.append(row.id)
        return found

    def of_type(self, event_type: str, **data: object) -> list[EmittedRow]:
        """The rows of ``event_type`` whose data has each of the given values."""
        return [
            row
            for row in self.rows
            if row.event_type == event_type
            and all(key in row.data and row.data[key] == value for key, value in data.items())
        ]

    def _keep(self) -> None:
        self._kept = self.rows


@contextmanager
def capture_events() -> Iterator[CapturedEvents]:
    """Record the outbox rows written inside the block (see the module's docstring)."""
    last_seq = OutboxEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    captured = CapturedEvents(after_seq=last_seq)
    yield captured
    captured._keep()
