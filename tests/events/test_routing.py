"""The routing table (events/routing.py): what emit, the dispatcher, /dapr/subscribe and the
job callbacks derive from it, the system check that guards it, and its stable consumer names."""

from __future__ import annotations

import dataclasses
import importlib
import io
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from events import routing
from events.checks import check_routing_table
from events.cloudevents import build_envelope, parse_envelope
from events.dispatch import deliver, run_handler
from events.jobs import find_job_handler
from events.models import OutboxEvent, ProcessedEvent
from events.registry import EventType
from events.routing import Consumer, Route, topics_for
from notifications.consumers import reminder_job, sweep_job
from tasks.services import task_complete
from tests.events.helpers import TEST_CONSUMER, add_routes
from tests.factories import make_task

DOCS = Path(django_settings.BASE_DIR) / "docs" / "events.md"
MIGRATION = importlib.import_module("events.migrations.0003_stable_consumer_names")
SHIPPED = routing.TABLE  # read at collection, before any fixture adds the tests' role


@pytest.fixture
def shipped_table(monkeypatch):
    """The app's table exactly as shipped, without the tests' role."""
    monkeypatch.setattr(routing, "TABLE", SHIPPED)


def app_consumer(name: str) -> Consumer:
    [found] = [c for cs in routing.TABLE.consumers.values() for c in cs if c.name == name]
    return found


def replace_table(monkeypatch, **changes) -> None:
    monkeypatch.setattr(routing, "TABLE", dataclasses.replace(routing.TABLE, **changes))


def error_ids() -> list[str]:
    return sorted(message.id for message in check_routing_table())


# --- what the table says, and what is derived from it ------------------------------------


def test_a_completed_repeating_task_also_goes_to_task_recurrence():
    assert topics_for(EventType.TASK_COMPLETED, {"has_recurrence": True}) == [
        "task-events",
        "task-updates",
        "task-recurrence",
    ]
    assert topics_for(EventType.TASK_COMPLETED, {"has_recurrence": False}) == [
        "task-events",
        "task-updates",
    ]
    assert topics_for(EventType.REMINDER_DUE, {}) == ["task-reminders"]


def test_emit_writes_the_tables_topics_with_their_configured_names(alice, settings, monkeypatch):
    settings.EVENT_TOPICS = {**settings.EVENT_TOPICS, "task_updates": "live-updates"}
    replace_table(
        monkeypatch,
        routes={**routing.TABLE.routes, EventType.TASK_CREATED: (Route("task_updates"),)},
    )

    make_task(alice)

    assert list(OutboxEvent.objects.values_list("topic", flat=True)) == ["live-updates"]


@pytest.mark.parametrize(
    ("roles", "topics"),
    [
        (["all"], ["task-events", "task-recurrence", "task-reminders", "task-updates"]),
        (["notifications"], ["task-events", "task-reminders"]),
        (["recurrence"], ["task-recurrence"]),
        (["web"], ["task-updates"]),
        (["none"], []),
        (["notifications", "recurrence"], ["task-events", "task-recurrence", "task-reminders"]),
    ],
)
def test_dapr_subscribe_lists_the_topics_of_the_roles_served(client, settings, roles, topics):
    settings.DAPR_ENABLED = True  # without Dapr the route does not exist
    settings.EVENT_CONSUMERS = roles

    response = client.get("/dapr/subscribe")

    assert [entry["topic"] for entry in response.json()] == topics


def test_the_dispatcher_runs_only_the_consumers_of_the_roles_served(alice, monkeypatch):
    ran: list[str] = []
    add_routes(
        monkeypatch,
        role="other-role",
        consumers={
            "task_events": (
                Consumer(
                    name="other-role.record",
                    handler=lambda event: ran.append("other"),
                    event_types=(EventType.TASK_CREATED,),
                    role="other-role",
                ),
            )
        },
    )
    add_routes(
        monkeypatch,
        consumers={
            "task_events": (
                Consumer(
                    name=f"{TEST_CONSUMER}.record",
                    handler=lambda event: ran.append("mine"),
                    event_types=(EventType.TASK_CREATED,),
                    role=TEST_CONSUMER,
                ),
            )
        },
    )
    make_task(alice)
    envelope = build_envelope(OutboxEvent.objects.get(topic="task-events"))

    assert deliver("task-events", envelope) == "SUCCESS"

    assert ran == ["mine"]


def test_a_consumer_takes_only_its_event_types(alice, monkeypatch):
    ran: list[str] = []
    add_routes(
        monkeypatch,
        consumers={
            "task_events": (
                Consumer(
                    name=f"{TEST_CONSUMER}.deletions",
                    handler=lambda event: ran.append(event.event_type),
                    event_types=(EventType.TASK_DELETED,),
                    role=TEST_CONSUMER,
                ),
            )
        },
    )
    make_task(alice)
    created = build_envelope(OutboxEvent.objects.get(topic="task-events"))

    assert deliver("task-events", created) == "SUCCESS"
    assert ran == []


def test_job_callbacks_come_from_the_table_for_the_roles_served(settings):
    settings.EVENT_CONSUMERS = ["notifications"]
    assert find_job_handler("reminder-task-12") is reminder_job
    assert find_job_handler("check-due-tasks") is sweep_job
    assert find_job_handler("reminder-task-x") is None  # a full match only
    assert find_job_handler("reminder-task-12-extra") is None

    settings.EVENT_CONSUMERS = ["recurrence"]  # Dapr calls back only the app that scheduled it
    assert find_job_handler("reminder-task-12") is None


# --- the system check ---------------------------------------------------------------------


def test_the_shipped_table_passes_the_check(settings, shipped_table):
    settings.EVENT_CONSUMERS = ["all"]
    assert error_ids() == []


@pytest.mark.parametrize("entries", [["all"], ["none"], ["web"], ["notifications", "recurrence"]])
def test_event_consumers_may_name_roles_all_or_none(settings, shipped_table, entries):
    settings.EVENT_CONSUMERS = entries
    assert error_ids() == []


def test_a_mistyped_event_consumers_entry_fails_the_check(settings):
    settings.EVENT_CONSUMERS = ["notifications", "notifcations"]

    [error] = check_routing_table()

    assert error.id == "tideline.E006"
    assert "'notifcations'" in error.msg


def test_a_route_to_an_unknown_topic_fails_the_check(settings, monkeypatch):
    settings.EVENT_CONSUMERS = ["all"]
    replace_table(
        monkeypatch,
        routes={**routing.TABLE.routes, EventType.TASK_DELETED: (Route("task_event"),)},
    )
    assert error_ids() == ["tideline.E001"]


def test_a_consumer_of_an_unknown_topic_fails_the_check(settings, monkeypatch):
    settings.EVENT_CONSUMERS = ["all"]
    settings.EVENT_TOPICS = {
        k: v for k, v in settings.EVENT_TOPICS.items() if k != "task_reminders"
    }
    routes = {**routing.TABLE.routes, EventType.REMINDER_DUE: (Route("task_events"),)}
    replace_table(monkeypatch, routes=routes)

    [error] = check_routing_table()

    assert error.id == "tideline.E001"
    assert "'task_reminders'" in error.msg


def test_an_unknown_event_type_fails_the_check(settings, monkeypatch):
    settings.EVENT_CONSUMERS = ["all"]
    bad = dataclasses.replace(app_consumer("recurrence.spawn-next"), event_types=("task.finished",))
    replace_table(monkeypatch, consumers={**routing.TABLE.consumers, "task_recurrence": (bad,)})

    [error] = check_routing_table()

    assert error.id == "tideline.E002"
    assert "'task.finished'" in error.msg


def test_an_event_type_without_a_route_fails_the_check(settings, monkeypatch):
    settings.EVENT_CONSUMERS = ["all"]
    routes = {k: v for k, v in routing.TABLE.routes.items() if k != EventType.TASK_DELETED}
    replace_table(monkeypatch, routes=routes)

    [error] = check_routing_table()

    assert error.id == "tideline.E002"
    assert "'task.deleted'" in error.msg


def test_a_consumer_of_an_event_type_never_routed_to_its_topic_fails_the_check(
    settings, monkeypatch
):
    """recurrence.spawn-next would wait for task.created, which never reaches task_recurrence."""
    settings.EVENT_CONSUMERS = ["all"]
    deaf = dataclasses.replace(
        app_consumer("recurrence.spawn-next"),
        event_types=(EventType.TASK_COMPLETED, EventType.TASK_CREATED),
    )
    replace_table(monkeypatch, consumers={**routing.TABLE.consumers, "task_recurrence": (deaf,)})

    [error] = check_routing_table()

    assert error.id == "tideline.E008"
    assert "'recurrence.spawn-next' of topic 'task_recurrence'" in error.msg
    assert "takes 'task.created', which is never routed to 'task_recurrence'" in error.msg


def test_a_conditional_route_counts_as_a_route(settings, shipped_table):
    """task.completed reaches task_recurrence only when the task repeats: still reachable."""
    settings.EVENT_CONSUMERS = ["all"]
    [route] = [r for r in SHIPPED.routes[EventType.TASK_COMPLETED] if r.topic == "task_recurrence"]
    assert route.when is not None
    assert error_ids() == []


def test_a_handler_that_is_not_callable_fails_the_check(settings, monkeypatch):
    settings.EVENT_CONSUMERS = ["all"]
    bad = dataclasses.replace(
        app_consumer("recurrence.spawn-next"), handler="recurrence.consumers.spawn"
    )
    job = dataclasses.replace(routing.TABLE.jobs[0], handler=None)
    replace_table(
        monkeypatch,
        consumers={**routing.TABLE.consumers, "task_recurrence": (bad,)},
        jobs=(job, *routing.TABLE.jobs[1:]),
    )
    assert error_ids() == ["tideline.E003", "tideline.E003"]


def test_a_table_that_cannot_be_imported_fails_the_check(settings, monkeypatch):
    """E.g. a handler it imports was renamed: the check reports it instead of crashing."""
    monkeypatch.setitem(sys.modules, "events.routing", None)

    [error] = check_routing_table()

    assert error.id == "tideline.E003"
    assert "cannot be imported" in error.msg


def test_an_unknown_role_fails_the_check(settings, monkeypatch):
    settings.EVENT_CONSUMERS = ["all"]
    bad = dataclasses.replace(app_consumer("recurrence.spawn-next"), role="recurence")
    replace_table(monkeypatch, consumers={**routing.TABLE.consumers, "task_recurrence": (bad,)})

    [error] = check_routing_table()

    assert error.id == "tideline.E004"
    assert "'recurence'" in error.msg


def test_a_duplicate_consumer_name_fails_the_check(settings, monkeypatch):
    settings.EVENT_CONSUMERS = ["all"]
    twin = dataclasses.replace(
        app_consumer("recurrence.spawn-next"), name="notifications.reminder-email"
    )
    replace_table(monkeypatch, consumers={**routing.TABLE.consumers, "task_recurrence": (twin,)})

    [error] = check_routing_table()

    assert error.id == "tideline.E005"
    assert "'notifications.reminder-email'" in error.msg


def test_a_job_callback_named_like_a_consumer_fails_the_check(settings, monkeypatch):
    settings.EVENT_CONSUMERS = ["all"]
    twin = dataclasses.replace(routing.TABLE.jobs[0], name="recurrence.spawn-next")
    replace_table(monkeypatch, jobs=(twin, *routing.TABLE.jobs[1:]))
    assert error_ids() == ["tideline.E005"]


def test_an_invalid_job_pattern_fails_the_check(settings, monkeypatch):
    settings.EVENT_CONSUMERS = ["all"]
    bad = dataclasses.replace(routing.TABLE.jobs[0], pattern=r"reminder-task-(\d+")
    replace_table(monkeypatch, jobs=(bad, *routing.TABLE.jobs[1:]))
    assert error_ids() == ["tideline.E007"]


def test_manage_py_check_fails_on_a_routing_error(settings):
    settings.EVENT_CONSUMERS = ["recurrance"]

    with pytest.raises(SystemCheckError, match=r"tideline\.E006"):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


# --- idempotency keyed by the stable consumer name ----------------------------------------


@pytest.fixture
def completed_event(alice):
    """A task.completed CloudEvent of a repeating task, as the recurrence consumer gets it."""
    task = make_task(
        alice, title="Water the plants", due_date=timezone.now(), recurrence_type="daily"
    )
    task_complete(task=task)
    return parse_envelope(build_envelope(OutboxEvent.objects.get(topic="task-recurrence")))


def test_the_idempotency_key_is_the_consumers_stable_name(completed_event):
    assert run_handler(app_consumer("recurrence.spawn-next"), completed_event) is True

    assert list(ProcessedEvent.objects.values_list("consumer", "event_id")) == [
        ("recurrence.spawn-next", completed_event.id)
    ]


def test_renaming_a_handler_function_keeps_its_key(db, completed_event):
    calls: list[str] = []

    def spawn_next(event) -> None:
        calls.append("before the rename")

    def spawn_following_instance(event) -> None:
        calls.append("after the rename")

    before = dataclasses.replace(app_consumer("recurrence.spawn-next"), handler=spawn_next)
    after = dataclasses.replace(before, handler=spawn_following_instance)

    assert run_handler(before, completed_event) is True
    assert run_handler(after, completed_event) is False  # a redelivery after the deploy

    assert calls == ["before the rename"]


def test_the_migration_keeps_old_records_recognised(db, completed_event):
    ProcessedEvent.objects.create(
        consumer="recurrence.spawn_on_completion", event_id=completed_event.id
    )
    calls: list[str] = []
    consumer = dataclasses.replace(
        app_consumer("recurrence.spawn-next"), handler=lambda event: calls.append(event.id)
    )

    MIGRATION.forwards(apps, schema_editor=None)

    assert run_handler(consumer, completed_event) is False
    assert calls == []
    assert list(ProcessedEvent.objects.values_list("consumer", flat=True)) == [
        "recurrence.spawn-next"
    ]


def test_the_migration_keeps_one_record_of_an_event_recorded_under_both_keys(db):
    ProcessedEvent.objects.create(consumer="recurrence.spawn_on_completion", event_id="e1")
    ProcessedEvent.objects.create(consumer="recurrence.spawn-next", event_id="e1")
    ProcessedEvent.objects.create(consumer="recurrence.spawn_on_completion", event_id="e2")
    ProcessedEvent.objects.create(consumer="events-tests.other", event_id="e3")

    MIGRATION.forwards(apps, schema_editor=None)

    assert sorted(ProcessedEvent.objects.values_list("consumer", "event_id")) == [
        ("events-tests.other", "e3"),
        ("recurrence.spawn-next", "e1"),
        ("recurrence.spawn-next", "e2"),
    ]


def test_the_migration_reverses_to_the_old_keys(db):
    ProcessedEvent.objects.create(consumer="recurrence.spawn-next", event_id="e1")

    MIGRATION.backwards(apps, schema_editor=None)

    assert list(ProcessedEvent.objects.values_list("consumer", flat=True)) == [
        "recurrence.spawn_on_completion"
    ]


# --- the documentation --------------------------------------------------------------------


def test_docs_events_md_holds_the_generated_routing_table(settings, shipped_table):
    settings.EVENT_TOPICS = {
        "task_events": "task-events",
        "task_updates": "task-updates",
        "task_recurrence": "task-recurrence",
        "task_reminders": "task-reminders",
    }
    out = io.StringIO()

    call_command("routing_table", stdout=out)

    printed = out.getvalue()
    assert "| `task.completed` | `task-recurrence` when" in printed
    assert printed in DOCS.read_text(), "docs/events.md: paste `manage.py routing_table` in"
