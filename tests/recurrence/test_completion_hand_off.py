"""Completing a repeating task computes its next due date once and hands it on.

The completing service (``task_update``) computes when the next instance is due, shows it at
once (``next_occurrence_at``) and puts it in the ``task.completed`` event; the recurrence
consumer creates the instance due then, without computing it again.
"""

from __future__ import annotations

import ast
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.utils.dateparse import parse_datetime

import recurrence.series
from events.cloudevents import build_envelope
from events.dispatch import DeliveryStatus, deliver
from events.models import OutboxEvent
from events.relay import relay_pending
from recurrence.models import RecurrenceSeries
from tasks.models import Task
from tasks.services import task_reopen
from tests.recurrence.helpers import NEW_YORK, at, complete, complete_and_relay, spawned_from
from tests.support.events import capture_events

RECURRENCE_TOPIC = "task-recurrence"


def completed_envelopes(task: Task) -> list[dict]:
    """The task.completed CloudEvents the recurrence consumer receives for ``task``."""
    rows = OutboxEvent.objects.filter(
        event_type="task.completed", topic=RECURRENCE_TOPIC, partition_key=str(task.pk)
    ).order_by("seq")
    return [build_envelope(row) for row in rows]


@pytest.fixture
def weekly(alice, make_task):
    def start(mode: str = "schedule", rule: str = "FREQ=WEEKLY") -> Task:
        return make_task(
            alice,
            title="Weekly review",
            due_date=at("2025-01-06 09:00").replace(tzinfo=None),
            timezone=NEW_YORK,
            recurrence_rule=rule,
            recurrence_mode=mode,
        )

    return start


def test_completing_through_the_api_spawns_one_instance_due_when_the_response_said(api, weekly):
    first = weekly()

    with capture_events() as captured:
        body = api.post(f"/api/tasks/{first.pk}/complete/").json()
        relay_pending()

    [spawned] = Task.objects.filter(parent=first)
    shown = parse_datetime(body["next_occurrence_at"])
    [completed] = [e for e in captured.events if e.event_type == "task.completed"]
    assert RECURRENCE_TOPIC in completed.topics
    assert parse_datetime(completed.data["task_data"]["next_occurrence_at"]) == shown
    assert spawned.due_date == shown == at("2025-01-13 09:00")
    assert api.get(f"/api/tasks/{spawned.pk}/").json()["parent"] == first.pk


@pytest.mark.parametrize("mode", ["schedule", "completion"])
def test_the_next_occurrence_is_computed_once_per_completion(weekly, mode):
    first = weekly(mode)

    with mock.patch(
        "tasks.services.next_occurrence", wraps=recurrence.series.next_occurrence
    ) as computed:
        spawned = complete_and_relay(first, when=at("2025-01-07 10:00"))

    assert computed.call_count == 1
    assert spawned.due_date == Task.objects.get(pk=first.pk).next_occurrence_at


def test_the_consumer_creates_the_instance_the_event_names(weekly):
    """Delivered by hand: the due date comes from the event, not from a second computation."""
    first = weekly()
    complete(first, when=at("2025-01-06 10:00"))
    [envelope] = completed_envelopes(first)

    with mock.patch("tasks.services.next_occurrence") as computed:
        assert deliver(RECURRENCE_TOPIC, envelope) == DeliveryStatus.SUCCESS

    computed.assert_not_called()
    assert spawned_from(first).due_date == at("2025-01-13 09:00")


def test_a_stale_completion_creates_nothing_and_the_latest_one_spawns(weekly):
    """Completed, reopened and completed again on another day before the consumer ran: the
    first event no longer matches the task, and the instance is the second completion's."""
    first = weekly("completion")
    complete(first, when=at("2025-01-06 10:00"))
    task_reopen(task=Task.objects.get(pk=first.pk))
    complete(first, when=at("2025-01-08 10:00"))
    stale, latest = completed_envelopes(first)

    assert deliver(RECURRENCE_TOPIC, stale) == DeliveryStatus.SUCCESS
    assert spawned_from(first) is None
    assert deliver(RECURRENCE_TOPIC, latest) == DeliveryStatus.SUCCESS
    assert spawned_from(first).due_date == at("2025-01-15 09:00")


def test_completing_the_last_instance_ends_the_series_and_publishes_only_the_completion(weekly):
    """The series' own bookkeeping is not a task change: it emits no event (docs/events.md,
    "Writes that emit no event")."""
    first = weekly(rule="FREQ=WEEKLY;COUNT=1")

    with capture_events() as captured:
        assert complete_and_relay(first) is None

    assert Task.objects.get(pk=first.pk).next_occurrence_at is None
    assert RecurrenceSeries.objects.get(pk=first.series_id).ended
    assert [e.event_type for e in captured.events] == ["task.completed"]


def test_a_spawn_publishes_the_new_instance_and_the_completed_ones_trigger_time(weekly):
    first = weekly()
    complete(first)

    with capture_events() as captured:
        relay_pending()

    spawned = spawned_from(first)
    created, triggered = captured.events
    assert (created.event_type, created.partition_key) == ("task.created", str(spawned.pk))
    assert (triggered.event_type, triggered.partition_key) == ("task.updated", str(first.pk))
    assert list(triggered.data["changes"]) == ["last_triggered_at"]
    assert triggered.data["task_data"]["last_triggered_at"] is not None
    assert RecurrenceSeries.objects.get(pk=first.series_id).instances_created == 2


# --- one-way dependency --------------------------------------------------------------------


def imported_packages(package: str) -> set[str]:
    """The top-level packages that the modules of ``package`` import (at any depth)."""
    found = set()
    for path in (Path(settings.BASE_DIR) / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return found


def test_tasks_uses_recurrence_and_recurrence_never_imports_tasks():
    assert "recurrence" in imported_packages("tasks")
    assert "tasks" not in imported_packages("recurrence")
