"""Exactly once: however often or concurrently a completion is handled, one instance."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from events.cloudevents import build_envelope
from events.dispatch import DeliveryStatus, deliver
from events.models import OutboxEvent, ProcessedEvent
from tasks.models import Task
from tasks.services import task_reopen, task_spawn_next
from tests.recurrence.helpers import (
    NEW_YORK,
    at,
    complete,
    complete_and_relay,
    spawned_from,
)
from tests.support.concurrency import run_in_threads
from tests.support.events import capture_events

RECURRENCE_TOPIC = "task-recurrence"


@pytest.fixture
def weekly(alice, make_task):
    def start(mode: str = "schedule") -> Task:
        return make_task(
            alice,
            title="Weekly review",
            due_date=at("2025-01-06 09:00").replace(tzinfo=None),
            timezone=NEW_YORK,
            recurrence_rule="FREQ=WEEKLY",
            recurrence_mode=mode,
        )

    return start


def spawn_next_instance(*, task_id: int) -> Task | None:
    """What the recurrence consumer does with the task's ``task.completed`` event."""
    next_due = Task.objects.get(pk=task_id).next_occurrence_at
    return task_spawn_next(task_id=task_id, next_due=next_due)


def completed_envelope(task: Task) -> dict:
    """The task.completed CloudEvent the recurrence consumer receives for ``task``."""
    row = OutboxEvent.objects.get(
        event_type="task.completed", topic=RECURRENCE_TOPIC, partition_key=str(task.pk)
    )
    return build_envelope(row)


@pytest.mark.parametrize("mode", ["schedule", "completion"])
def test_complete_reopen_complete_spawns_one_instance(weekly, mode):
    first = weekly(mode)

    with capture_events() as captured:
        spawned = complete_and_relay(first, when=at("2025-01-06 10:00"))
        task_reopen(task=Task.objects.get(pk=first.pk))
        again = complete_and_relay(first, when=at("2025-01-08 10:00"))

    assert again == spawned  # still the one from the first completion
    assert Task.objects.filter(series_id=first.series_id).count() == 2
    completions = [r for r in captured.of_type("task.completed") if r.topic == RECURRENCE_TOPIC]
    assert len(completions) == 2


def test_the_same_event_delivered_twice_spawns_one_instance(weekly):
    first = weekly()
    complete(first)
    envelope = completed_envelope(first)

    statuses = [deliver(RECURRENCE_TOPIC, envelope), deliver(RECURRENCE_TOPIC, envelope)]

    assert statuses == [DeliveryStatus.SUCCESS, DeliveryStatus.SUCCESS]
    assert spawned_from(first) is not None
    assert Task.objects.count() == 2
    assert ProcessedEvent.objects.filter(event_id=envelope["id"]).count() == 1


def test_the_same_completion_republished_under_a_new_id_spawns_one_instance(weekly):
    first = weekly()
    complete(first)
    envelope = completed_envelope(first)

    deliver(RECURRENCE_TOPIC, envelope)
    status = deliver(RECURRENCE_TOPIC, {**envelope, "id": str(uuid.uuid4())})

    assert status == DeliveryStatus.SUCCESS
    assert Task.objects.count() == 2


def test_spawning_twice_creates_one_instance(weekly):
    first = weekly()
    complete(first)

    spawned = spawn_next_instance(task_id=first.pk)
    second_attempt = spawn_next_instance(task_id=first.pk)

    assert spawned is not None
    assert second_attempt is None
    assert list(Task.objects.filter(parent=first)) == [spawned]


def test_spawning_for_a_pending_task_creates_nothing(weekly):
    first = weekly()

    assert spawn_next_instance(task_id=first.pk) is None
    assert Task.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs row locks (PostgreSQL)")
def test_concurrent_spawns_create_one_instance(transactional_db, weekly):
    first = weekly()
    complete(first)

    results = run_in_threads(6, lambda i: spawn_next_instance(task_id=first.pk))

    assert len([result for result in results if result is not None]) == 1
    assert Task.objects.filter(parent=first).count() == 1
    assert Task.objects.filter(series_id=first.series_id).count() == 2
