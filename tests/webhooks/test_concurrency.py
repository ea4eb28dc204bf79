"""Exactly one delivery per event and endpoint, whatever the event backbone does: the same
event delivered twice, and to two consumers at once. PostgreSQL only (real row locks, one
connection per thread)."""

from __future__ import annotations

import pytest
from django.db import connections

from events.cloudevents import build_envelope
from events.dispatch import deliver
from events.models import ConsumerFailure, OutboxEvent
from tests.factories import make_task
from tests.notifications.helpers import require_postgresql
from tests.support.concurrency import run_in_threads
from tests.webhooks.helpers import deliveries, later, register
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 4


@pytest.fixture(autouse=True)
def postgresql_only():
    require_postgresql()


def test_an_event_delivered_twice_and_to_consumers_at_once_is_posted_once(api, alice, receiver):
    hook = register(api, receiver)
    make_task(alice, title="Only once")
    row = OutboxEvent.objects.get(topic="task-events")
    envelope = build_envelope(row)

    statuses = run_in_threads(THREADS, lambda i: deliver("task-events", envelope))
    deliver("task-events", envelope)  # and a late duplicate

    assert {str(s) for s in statuses} == {"SUCCESS"}
    [delivery] = deliveries(hook["id"])
    assert delivery.event_id == str(row.id)
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1
    assert len(receiver.requests) == 1
    assert receiver.requests[0].verified


def test_the_sweep_on_several_workers_sends_a_due_retry_once(api, alice, receiver):
    hook = register(api, receiver)
    receiver.answer(503)
    make_task(alice, title="Retry me once")
    deliver("task-events", build_envelope(OutboxEvent.objects.get(topic="task-events")))
    [delivery] = deliveries(hook["id"])
    assert delivery.state == "pending"

    moment = later(3600)
    run_in_threads(THREADS, lambda i: services.deliveries_sweep(now=moment))

    assert len(receiver.requests) == 2
    assert deliveries(hook["id"])[0].state == "succeeded"


def test_an_endpoint_deleted_while_its_delivery_is_in_flight_ends_quietly(api, alice, receiver):
    hook = register(api, receiver)

    def delete_it() -> None:
        try:
            WebhookEndpoint.objects.filter(pk=hook["id"]).delete()
        finally:
            connections.close_all()

    receiver.on_request = delete_it
    make_task(alice, title="Gone meanwhile")
    status = deliver("task-events", build_envelope(OutboxEvent.objects.get(topic="task-events")))

    assert str(status) == "SUCCESS"
    assert len(receiver.requests) == 1
    assert not WebhookDelivery.objects.exists()
    assert not WebhookAttempt.objects.exists()
    assert not ConsumerFailure.objects.exists()  # nothing to retry: the consumer succeeded
