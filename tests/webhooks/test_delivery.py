"""A user registers a webhook and hears every change, signed per Standard Webhooks."""

from __future__ import annotations

import datetime as dt
import json

import requests
from standardwebhooks import Webhook

from events.models import OutboxEvent
from events.relay import relay_pending
from tests.webhooks.helpers import deliveries, register
from webhooks import services
from webhooks.models import DeliveryState


def test_every_change_of_a_task_arrives_once_signed_in_order(api, receiver):
    hook = register(api, receiver)
    assert hook["secret"].startswith("whsec_")

    task = api.post("/api/tasks/", {"title": "Water the plants"}, format="json").json()
    api.patch(f"/api/tasks/{task['id']}/", {"priority": "high"}, format="json")
    api.post(f"/api/tasks/{task['id']}/complete/")
    api.delete(f"/api/tasks/{task['id']}/")
    relay_pending()

    assert [r.verified for r in receiver.requests] == [True] * 4
    assert [e["type"] for e in receiver.events] == [
        "task.created",
        "task.updated",
        "task.completed",
        "task.deleted",
    ]
    created = receiver.events[0]
    assert created["data"]["task_data"]["title"] == "Water the plants"
    assert created["timestamp"]
    event_ids = [
        str(row.id)
        for row in OutboxEvent.objects.filter(topic="task-events").order_by("created_at", "seq")
    ]
    assert [r.headers["webhook-id"] for r in receiver.requests] == event_ids
    assert all(r.headers["content-type"] == "application/json" for r in receiver.requests)

    relay_pending()  # nothing new: nothing sent again
    assert len(receiver.requests) == 4


def test_the_receiver_rejects_a_tampered_body_and_an_old_timestamp(api, receiver):
    register(api, receiver)
    api.post("/api/tasks/", {"title": "Pay the rent"}, format="json")
    relay_pending()
    [original] = receiver.requests
    assert original.verified

    def replay(body: bytes, headers: dict) -> int:
        return requests.post(receiver.url(), data=body, headers=headers, timeout=5).status_code

    headers = {
        k: original.headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    assert replay(original.body, headers) == 204  # the genuine request verifies again
    tampered = original.body.replace(b"Pay the rent", b"Pay the thief")
    assert replay(tampered, headers) == 400
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    signed_long_ago = {
        **headers,
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": Webhook(receiver.secret).sign(
            headers["webhook-id"], old, original.body.decode()
        ),
    }
    assert replay(original.body, signed_long_ago) == 400
    assert [r.error for r in receiver.requests[1:]] == [
        "",
        "No matching signature found",
        "Message timestamp too old",
    ]


def test_an_endpoint_hears_only_the_event_types_it_asked_for(api, receiver):
    register(api, receiver, event_types=["task.completed"])
    task = api.post("/api/tasks/", {"title": "Call mum"}, format="json").json()
    api.post(f"/api/tasks/{task['id']}/complete/")
    relay_pending()

    assert [e["type"] for e in receiver.events] == ["task.completed"]


def test_another_users_changes_never_reach_my_endpoint(api, bob_api, receiver):
    register(api, receiver)
    bob_api.post("/api/tasks/", {"title": "Bob's secret plan"}, format="json")
    relay_pending()

    assert receiver.requests == []


def test_a_disabled_endpoint_gets_nothing(api, receiver):
    hook = register(api, receiver)
    api.patch(f"/api/webhooks/{hook['id']}/", {"enabled": False}, format="json")
    api.post("/api/tasks/", {"title": "Quiet please"}, format="json")
    relay_pending()

    assert receiver.requests == []
    assert deliveries(hook["id"]) == []


def test_the_delivery_log_shows_each_attempt_and_redeliver_sends_it_again(api, receiver):
    hook = register(api, receiver)
    api.post("/api/tasks/", {"title": "Book the flights"}, format="json")
    receiver.answer(200, body=b"thanks, " + b"x" * 200)
    relay_pending()

    log = api.get(f"/api/webhooks/{hook['id']}/deliveries/").json()
    assert log["count"] == 1
    [entry] = log["results"]
    assert entry["event_type"] == "task.created"
    assert entry["state"] == "succeeded"
    assert entry["attempt_count"] == 1
    [attempt] = entry["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["duration_ms"] >= 0
    assert attempt["response_excerpt"] == ("thanks, " + "x" * 200)[:64]  # capped

    response = api.post(f"/api/webhooks/{hook['id']}/deliveries/{entry['id']}/redeliver/")
    assert response.status_code == 202, response.json()
    assert response.json()["state"] == "pending"
    assert len(receiver.requests) == 1  # queued, not sent inside the request

    services.deliveries_sweep()

    assert len(receiver.requests) == 2
    first, again = receiver.requests
    assert again.verified
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == entry["event_id"]
    log = api.get(f"/api/webhooks/{hook['id']}/deliveries/").json()
    assert log["results"][0]["state"] == "succeeded"
    assert len(log["results"][0]["attempts"]) == 2


def test_send_test_event_goes_through_the_same_signed_path(api, receiver):
    hook = register(api, receiver, event_types=["task.deleted"])
    response = api.post(f"/api/webhooks/{hook['id']}/test/")
    assert response.status_code == 202, response.json()
    assert response.json()["event_type"] == "webhook.test"

    services.deliveries_sweep()

    [request] = receiver.requests
    assert request.verified
    assert request.json["type"] == "webhook.test"
    assert request.headers["webhook-id"] == response.json()["event_id"]
    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.SUCCEEDED
    assert json.loads(delivery.body)["data"]["message"] == "A test event from Tideline."
