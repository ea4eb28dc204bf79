"""The web role's consumer of ``task-updates``: every change lands once, in order, in its
owner's live-updates log, which open pages follow (tests/web/test_live_stream.py)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from events.cloudevents import build_envelope
from events.dispatch import DeliveryStatus, deliver
from events.live import current_position, prune
from events.models import LiveUpdate, OutboxEvent
from events.relay import relay_pending
from tasks import services
from tests.factories import make_task


@pytest.fixture(autouse=True)
def web_role(settings):
    """This process serves the web role, which consumes task-updates."""
    settings.EVENT_CONSUMERS = ["web"]


def updates_of(user) -> list[tuple[int, str, int]]:
    return list(
        LiveUpdate.objects.filter(user=user)
        .order_by("seq")
        .values_list("seq", "event_type", "task_id")
    )


def task_updates_rows() -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(topic="task-updates").order_by("seq"))


def test_each_change_lands_in_its_owners_log_under_its_cloudevent_id(alice, bob):
    task = make_task(alice, title="Water the ferns")
    task_id = task.pk
    services.task_update(task=task, data={"priority": "high"})
    services.task_complete(task=task)
    services.task_delete(task=task)
    make_task(bob, title="Bob's own")

    relay_pending()

    assert updates_of(alice) == [
        (1, "task.created", task_id),
        (2, "task.updated", task_id),
        (3, "task.completed", task_id),
        (4, "task.deleted", task_id),
    ]
    published = [str(row.id) for row in task_updates_rows() if row.data["user_id"] == alice.pk]
    logged = list(LiveUpdate.objects.filter(user=alice).order_by("seq").values_list("event_id"))
    assert [event_id for (event_id,) in logged] == published
    assert current_position(alice.pk) == (4, published[-1])
    assert [event_type for _, event_type, _ in updates_of(bob)] == ["task.created"]


def test_what_a_page_receives_names_the_change_and_the_changed_fields(alice):
    task = make_task(alice, title="Pay rent")
    services.task_update(task=task, data={"title": "Pay the rent", "priority": "urgent"})
    relay_pending()

    update = LiveUpdate.objects.get(user=alice, event_type="task.updated")
    assert update.data["type"] == "task.updated"
    assert update.data["task_id"] == task.pk
    assert update.data["changed"] == ["priority", "title"]
    assert update.data["task"]["title"] == "Pay the rent"


def test_a_duplicate_delivery_lands_once(alice):
    make_task(alice, title="Once only")
    row = task_updates_rows()[0]
    envelope = build_envelope(row)

    first = deliver("task-updates", envelope)
    second = deliver("task-updates", envelope)

    assert (first, second) == (DeliveryStatus.SUCCESS, DeliveryStatus.SUCCESS)
    assert len(updates_of(alice)) == 1


def test_a_process_serving_no_web_role_records_nothing(alice, settings):
    settings.EVENT_CONSUMERS = ["notifications"]
    make_task(alice, title="Not followed here")

    relay_pending()

    assert updates_of(alice) == []


def test_prune_keeps_the_retention_window(alice, settings):
    settings.LIVE_UPDATES_RETENTION_HOURS = 24
    make_task(alice, title="Old")
    make_task(alice, title="New")
    relay_pending()
    old = LiveUpdate.objects.filter(user=alice).order_by("seq").first()
    LiveUpdate.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=25))

    assert prune() == 1

    assert [seq for seq, _, _ in updates_of(alice)] == [2]
    assert current_position(alice.pk)[0] == 2  # new updates go on from there


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_for_one_user_take_one_position_each(alice):
    """Two web replicas (threads here, each with its own connection) consuming one user's
    changes at once: every change gets its own position, none lost, none twice."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises every writer; the race needs PostgreSQL")
    for n in range(12):
        make_task(alice, title=f"Task {n}")
    envelopes = [build_envelope(row) for row in task_updates_rows()]
    start = threading.Barrier(len(envelopes))
    results: list[DeliveryStatus] = []

    def consume(envelope) -> None:
        try:
            start.wait()
            results.append(deliver("task-updates", envelope))
            results.append(deliver("task-updates", envelope))  # and a duplicate
        finally:
            connections.close_all()

    threads = [threading.Thread(target=consume, args=(e,)) for e in envelopes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert results == [DeliveryStatus.SUCCESS] * 24
    positions = [seq for seq, _, _ in updates_of(alice)]
    assert positions == list(range(1, 13))
    assert sorted(LiveUpdate.objects.values_list("event_id", flat=True)) == sorted(
        e["id"] for e in envelopes
    )
