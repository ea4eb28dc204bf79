"""Emitting: every task change writes exactly one event to the outbox, in its transaction.

Routing (issue 3): task.created/updated/deleted → task-events, task-updates; task.completed
also → task-recurrence when the task has a rule; one outbox row per (event, topic).
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import transaction

import events
from events.payloads import reminder_due_event
from events.registry import EventType
from events.relay import relay_pending, request_relay
from tasks import services
from tasks.models import Task
from tests.factories import make_category, make_tag, make_task
from tests.support.events import capture_events

BOTH = ["task-events", "task-updates"]
TASK_DATA_FIELDS = {
    "id",
    "title",
    "description",
    "completed",
    "completed_at",
    "priority",
    "due_date",
    "timezone",
    "category",
    "tags",
    "recurrence_rule",
    "recurrence_type",
    "recurrence_interval",
    "recurrence_mode",
    "remind_at",
    "remind_before",
    "reminder_sent",
    "next_occurrence_at",
    "last_triggered_at",
    "parent",
    "created_at",
    "updated_at",
}


# --- through the services --------------------------------------------------------------


def test_create_writes_one_task_created_with_tags_to_both_topics(alice):
    with capture_events() as captured:
        task = make_task(alice, title="Buy milk", tags=["errands", "Home"], priority="high")

    [event] = captured.events
    assert event.event_type == EventType.TASK_CREATED
    assert event.topics == BOTH
    assert event.partition_key == str(task.pk)
    assert len(set(event.ids)) == 2, "one row, so one CloudEvent id, per topic"
    data = event.data
    assert set(data) == {"task_id", "task_data", "user_id", "timestamp"}
    assert data["task_id"] == task.pk
    assert data["user_id"] == alice.pk
    assert set(data["task_data"]) == TASK_DATA_FIELDS
    assert data["task_data"]["title"] == "Buy milk"
    assert data["task_data"]["priority"] == "high"
    assert data["task_data"]["tags"] == ["errands", "Home"]
    assert data["timestamp"].endswith("Z")
    dt.datetime.fromisoformat(data["timestamp"])


def test_update_carries_exactly_the_changed_fields(alice):
    task = make_task(alice, title="Old", priority="low", description="same")

    with capture_events() as captured:
        services.task_update(
            task=task, data={"title": "New", "priority": "urgent", "description": "same"}
        )

    [event] = captured.events
    assert event.event_type == EventType.TASK_UPDATED
    assert event.topics == BOTH
    data = event.data
    assert set(data) == {"task_id", "task_data", "changes", "user_id", "timestamp"}
    assert data["changes"] == {
        "title": {"old": "Old", "new": "New"},
        "priority": {"old": "low", "new": "urgent"},
    }
    assert data["task_data"]["title"] == "New"
    assert data["task_data"]["priority"] == "urgent"


def test_a_tag_change_is_an_update_of_tags_with_the_final_tags(alice):
    task = make_task(alice, tags=["a"])

    with capture_events() as captured:
        services.task_update(task=task, data={"tags": ["b", "a"]})

    [event] = captured.events
    assert event.data["changes"] == {"tags": {"old": ["a"], "new": ["a", "b"]}}
    assert event.data["task_data"]["tags"] == ["a", "b"]


def test_an_update_that_changes_nothing_emits_nothing(alice):
    task = make_task(alice, title="Same", tags=["a"])

    with capture_events() as captured:
        services.task_update(task=task, data={"title": "Same", "tags": ["a"]})

    assert captured.events == []


def test_complete_without_a_rule_goes_to_events_and_updates_only(alice):
    task = make_task(alice)

    with capture_events() as captured:
        services.task_complete(task=task)

    [event] = captured.events
    assert event.event_type == EventType.TASK_COMPLETED
    assert event.topics == BOTH
    data = event.data
    assert set(data) == {"task_id", "task_data", "user_id", "timestamp", "has_recurrence"}
    assert data["has_recurrence"] is False
    assert data["task_data"]["completed"] is True
    assert data["task_data"]["completed_at"] is not None


@pytest.mark.parametrize(
    "rule", [{"recurrence_type": "weekly"}, {"recurrence_rule": "FREQ=DAILY;INTERVAL=2"}]
)
def test_complete_with_a_rule_also_goes_to_task_recurrence(alice, rule):
    task = make_task(alice, due_date=dt.datetime(2030, 1, 7, 9, 0, tzinfo=dt.UTC), **rule)

    with capture_events() as captured:
        services.task_complete(task=task)

    [event] = captured.events
    assert event.event_type == EventType.TASK_COMPLETED
    assert event.topics == [*BOTH, "task-recurrence"]
    assert event.data["has_recurrence"] is True


def test_a_reopen_is_an_update_of_completed(alice):
    task = make_task(alice, completed=True)

    with capture_events() as captured:
        services.task_reopen(task=task)

    [event] = captured.events
    assert event.event_type == EventType.TASK_UPDATED
    assert event.topics == BOTH
    changes = event.data["changes"]
    assert changes["completed"] == {"old": True, "new": False}
    assert changes["completed_at"]["new"] is None
    assert set(changes) == {"completed", "completed_at"}


def test_delete_writes_one_task_deleted(alice):
    task = make_task(alice)
    task_id = task.pk

    with capture_events() as captured:
        services.task_delete(task=task)

    [event] = captured.events
    assert event.event_type == EventType.TASK_DELETED
    assert event.topics == BOTH
    assert event.partition_key == str(task_id)
    assert set(event.data) == {"task_id", "user_id", "timestamp"}
    assert event.data["task_id"] == task_id
    assert event.data["user_id"] == alice.pk


def test_deleting_a_category_emits_one_update_per_task_it_had(alice):
    work = make_category(alice, "Work")
    first, second = make_task(alice, category=work), make_task(alice, category=work)
    make_task(alice)
    work_id = work.pk

    with capture_events() as captured:
        services.category_delete(category=work)

    found = captured.events
    assert sorted(e.data["task_id"] for e in found) == sorted([first.pk, second.pk])
    for event in found:
        assert event.event_type == EventType.TASK_UPDATED
        assert event.data["changes"] == {"category": {"old": work_id, "new": None}}


def test_reminder_due_goes_to_task_reminders_only(alice):
    remind_at = dt.datetime(2030, 1, 7, 8, 0, tzinfo=dt.UTC)
    task = make_task(alice, title="Call", due_date=dt.datetime(2030, 1, 7, 9, 0, tzinfo=dt.UTC))

    with capture_events() as captured, transaction.atomic():
        events.emit(
            EventType.REMINDER_DUE,
            reminder_due_event(task, remind_at=remind_at),
            partition_key=task.pk,
        )

    [event] = captured.events
    assert event.topics == ["task-reminders"]
    assert event.data == {
        "task_id": task.pk,
        "title": "Call",
        "due_at": "2030-01-07T09:00:00Z",
        "remind_at": "2030-01-07T08:00:00Z",
        "user_id": alice.pk,
    }


def test_topic_names_are_configurable(alice, settings):
    settings.EVENT_TOPICS = {
        "task_events": "prod.tasks",
        "task_updates": "prod.live",
        "task_recurrence": "prod.recurrence",
        "task_reminders": "prod.reminders",
    }
    with capture_events() as captured:
        task = make_task(alice, recurrence_type="daily")
        services.task_complete(task=task)

    assert [e.topics for e in captured.events] == [
        ["prod.tasks", "prod.live"],
        ["prod.tasks", "prod.live", "prod.recurrence"],
    ]


# --- through the REST API ------------------------------------------------------------------


def test_the_rest_api_emits_one_event_per_write(api, alice):
    with capture_events() as captured:
        response = api.post("/api/tasks/", {"title": "Via API", "tags": ["x"]})
    assert response.status_code == 201, response.json()
    task_id = response.json()["id"]
    [created] = captured.events
    assert created.event_type == EventType.TASK_CREATED
    assert created.data["task_data"]["tags"] == ["x"]

    with capture_events() as captured:
        assert api.patch(f"/api/tasks/{task_id}/", {"title": "Renamed"}).status_code == 200
    [updated] = captured.events
    assert updated.event_type == EventType.TASK_UPDATED
    assert updated.data["changes"] == {"title": {"old": "Via API", "new": "Renamed"}}

    with capture_events() as captured:
        assert api.post(f"/api/tasks/{task_id}/complete/").status_code == 200
    [completed] = captured.events
    assert completed.event_type == EventType.TASK_COMPLETED

    with capture_events() as captured:
        assert api.post(f"/api/tasks/{task_id}/reopen/").status_code == 200
    [reopened] = captured.events
    assert reopened.event_type == EventType.TASK_UPDATED
    assert reopened.data["changes"]["completed"] == {"old": True, "new": False}

    with capture_events() as captured:
        assert api.delete(f"/api/tasks/{task_id}/").status_code == 204
    [deleted] = captured.events
    assert deleted.event_type == EventType.TASK_DELETED
    assert deleted.data["task_id"] == task_id


def test_a_rejected_api_write_emits_nothing(api, alice):
    task = make_task(alice)

    with capture_events() as captured:
        response = api.patch(f"/api/tasks/{task.pk}/", {"title": "   "})

    assert response.status_code == 400
    assert captured.events == []


# --- transactions ------------------------------------------------------------------------


def test_a_rolled_back_transaction_writes_and_publishes_nothing(
    alice, fake_dapr, django_capture_on_commit_callbacks
):
    with (
        capture_events() as captured,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        task = make_task(alice, title="Never happened")
        services.task_complete(task=task)
        assert len(captured.rows) == 4  # written inside the transaction...
        raise RuntimeError("boom")

    assert captured.rows == []  # ...and gone with it
    assert callbacks == []  # no relay is asked for
    assert relay_pending().attempted == 0
    assert fake_dapr.published == []


def test_a_commit_asks_for_a_relay_but_nothing_is_sent_inside_the_transaction(
    alice, fake_dapr, django_capture_on_commit_callbacks
):
    with (
        capture_events() as captured,
        django_capture_on_commit_callbacks(execute=False) as callbacks,
    ):
        make_task(alice)
        assert fake_dapr.published == []  # no network I/O while the transaction is open

    assert request_relay in callbacks
    relay_pending()
    assert [p.event["id"] for p in fake_dapr.published] == [str(r.id) for r in captured.rows]


@pytest.mark.django_db(transaction=True)
def test_emit_outside_a_transaction_is_refused(alice):
    with (
        capture_events() as captured,
        pytest.raises(RuntimeError, match=r"inside transaction\.atomic"),
    ):
        events.emit(EventType.TASK_DELETED, {"task_id": 1}, partition_key=1)
    assert captured.rows == []


# --- the signal safety net -----------------------------------------------------------------


def test_a_save_that_bypasses_the_services_is_caught_exactly_once(alice):
    task = make_task(alice, title="Before")

    with capture_events() as captured:
        shell_task = Task.objects.get(pk=task.pk)
        shell_task.title = "After"
        shell_task.save()

    [event] = captured.events
    assert event.event_type == EventType.TASK_UPDATED
    assert event.topics == BOTH
    assert event.data["changes"] == {"title": {"old": "Before", "new": "After"}}
    assert event.data["task_data"]["title"] == "After"


def test_a_task_created_outside_the_services_is_caught_exactly_once(alice):
    with capture_events() as captured:
        task = Task.objects.create(user=alice, title="Raw")

    [event] = captured.events
    assert event.event_type == EventType.TASK_CREATED
    assert event.data["task_id"] == task.pk


def test_tags_added_outside_the_services_are_caught_exactly_once(alice):
    task = make_task(alice)
    tag = make_tag(alice, "urgent")

    with capture_events() as captured:
        Task.objects.get(pk=task.pk).tags.add(tag)

    [event] = captured.events
    assert event.event_type == EventType.TASK_UPDATED
    assert event.data["changes"] == {"tags": {"old": [], "new": ["urgent"]}}
    assert event.data["task_data"]["tags"] == ["urgent"]


def test_a_delete_outside_the_services_is_caught_exactly_once(alice):
    task = make_task(alice)
    task_id = task.pk

    with capture_events() as captured:
        Task.objects.get(pk=task_id).delete()

    [event] = captured.events
    assert event.event_type == EventType.TASK_DELETED
    assert event.data["task_id"] == task_id


def test_service_saves_are_never_double_emitted(alice):
    category = make_category(alice)
    with capture_events() as captured:
        task = make_task(alice, tags=["a", "b"], category=category)
    assert len(captured.events) == 1

    with capture_events() as captured:
        services.task_update(task=task, data={"title": "x", "tags": ["c"], "category": None})
    assert len(captured.events) == 1

    with capture_events() as captured:
        services.task_update(task=task, data={"tags": ["d"]})  # tags only: a second save inside
    assert len(captured.events) == 1

    with capture_events() as captured:
        services.task_delete(task=task)
    assert len(captured.events) == 1


def test_each_row_has_its_own_uuid_and_emit_returns_the_one_stored(alice):
    task = make_task(alice)

    with capture_events() as captured, transaction.atomic():
        returned = events.emit(
            EventType.TASK_DELETED, {"task_id": task.pk, "user_id": alice.pk}, partition_key=task.pk
        )

    stored = [row.id for row in captured.rows]
    assert [row.id for row in returned] == stored  # the id emit logs is the CloudEvent id
    assert len(set(stored)) == 2
    assert all(isinstance(event_id, uuid.UUID) for event_id in stored)


def test_a_shell_save_that_changes_nothing_publishes_nothing(alice):
    task = make_task(alice, title="Steady")

    with capture_events() as captured:
        Task.objects.get(pk=task.pk).save()

    assert captured.rows == []


def test_tagging_from_the_tag_side_in_a_shell_is_caught_by_the_safety_net(alice):
    task = make_task(alice, title="Tag me", tags=["old"])
    tag = services.tag_create(user=alice, name="new")

    with capture_events() as captured:
        tag.tasks.add(task)

    [event] = captured.events
    assert event.event_type == "task.updated"
    assert event.topics == BOTH  # task-events and task-updates
    assert event.data["changes"] == {"tags": {"old": ["old"], "new": ["new", "old"]}}
