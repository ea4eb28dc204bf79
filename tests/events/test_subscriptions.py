"""The endpoints the sidecar calls, over real HTTP (``live_server``), and idempotent consumption."""

from __future__ import annotations

import json

import pytest
import requests
from django.db import OperationalError, connection

from events.cloudevents import build_envelope
from events.dispatch import RetryLater, deliver
from events.models import ConsumerFailure, OutboxEvent, ProcessedEvent
from events.registry import EventType
from events.routing import Consumer
from tests.events.helpers import TEST_CONSUMER, add_routes, start_sidecar
from tests.factories import make_task
from tests.support.concurrency import run_in_threads
from tests.support.fake_dapr import DROP, SUCCESS

CE = {"Content-Type": "application/cloudevents+json"}


@pytest.fixture
def envelope(alice, live_server):
    """A real task.created CloudEvent for task-events, as the relay builds it."""
    make_task(alice, title="Delivered", tags=["x"])
    return build_envelope(OutboxEvent.objects.get(topic="task-events"))


# --- discovery -------------------------------------------------------------------------


def test_subscribe_lists_one_entry_per_topic(live_server, consumer, monkeypatch, dapr_callbacks):
    second = Consumer(
        name=f"{TEST_CONSUMER}.second",
        handler=lambda event: None,
        event_types=tuple(EventType),
        role=TEST_CONSUMER,
    )
    add_routes(monkeypatch, consumers={"task_events": (second,)})

    response = requests.get(f"{live_server.url}/dapr/subscribe", timeout=5)

    assert response.status_code == 200
    entries = response.json()
    assert [e["topic"] for e in entries] == ["task-events", "task-recurrence", "task-reminders"]
    for entry in entries:
        assert entry["pubsubname"] == "pubsub-kafka"
        assert entry["routes"]["default"] == f"/events/{entry['topic']}"
        assert entry["deadLetterTopic"] == "tideline-dead-letter"


def test_the_sidecar_discovers_the_routes(sidecar, consumer):
    subs = {s["topic"]: s for s in sidecar.subscriptions()}
    assert set(subs) == {"task-events", "task-recurrence", "task-reminders"}
    assert subs["task-events"]["routes"]["default"] == "/events/task-events"


def test_event_consumers_limits_the_topics(
    live_server, consumer, settings, monkeypatch, dapr_callbacks
):
    live_view = Consumer(
        name="live-view.refresh",
        handler=lambda event: None,
        event_types=tuple(EventType),
        role="live-view",
    )
    add_routes(monkeypatch, role="live-view", consumers={"task_updates": (live_view,)})

    def topics() -> list[str]:
        response = requests.get(f"{live_server.url}/dapr/subscribe", timeout=5)
        return [e["topic"] for e in response.json()]

    settings.EVENT_CONSUMERS = ["all"]  # the default: every role
    every = topics()
    assert len(every) == len(set(every))
    assert {"task-events", "task-recurrence", "task-reminders", "task-updates"} <= set(every)
    settings.EVENT_CONSUMERS = ["live-view"]
    assert topics() == ["task-updates"]
    settings.EVENT_CONSUMERS = [TEST_CONSUMER]
    assert topics() == ["task-events", "task-recurrence", "task-reminders"]
    settings.EVENT_CONSUMERS = ["nobody"]
    assert topics() == []


def test_a_topic_this_process_does_not_serve_is_dropped(
    live_server, consumer, envelope, dapr_callbacks
):
    response = requests.post(
        f"{live_server.url}/events/task-updates", data=json.dumps(envelope), headers=CE, timeout=5
    )
    assert response.status_code == 200
    assert response.json() == {"status": "DROP"}
    assert consumer.effects() == []


# --- delivery --------------------------------------------------------------------------


def test_a_valid_event_is_handled_once_and_answered_success(sidecar, consumer, envelope):
    assert sidecar.deliver("task-events", envelope) == SUCCESS

    effects = consumer.effects()
    assert len(effects) == 1
    assert effects[0]["event_id"] == envelope["id"]
    assert effects[0]["event_type"] == "task.created"
    assert effects[0]["topic"] == "task-events"
    assert effects[0]["data"] == envelope["data"]
    assert sidecar.deliveries[-1].path == "/events/task-events"
    assert sidecar.deliveries[-1].http_status == 200


def test_plain_json_is_accepted_too(live_server, consumer, envelope, dapr_callbacks):
    response = requests.post(
        f"{live_server.url}/events/task-events",
        data=json.dumps(envelope),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.json() == {"status": "SUCCESS"}
    assert len(consumer.effects()) == 1


def test_published_events_flow_back_through_the_sidecar_to_the_consumer(
    alice, live_server, settings, consumer
):
    """App → sidecar → app: relay, then the sidecar delivers to the subscribed route."""
    from events.relay import relay_pending

    fake = start_sidecar(settings, app_url=live_server.url, auto_deliver=True)
    try:
        tasks = [make_task(alice, title=f"t{i}") for i in range(3)]
        relay_pending()
        fake.drain(timeout=10)
        assert not fake.errors
    finally:
        fake.stop()

    ids = [str(r.id) for r in OutboxEvent.objects.filter(topic="task-events").order_by("seq")]
    assert [e["event_id"] for e in consumer.effects()] == ids
    assert sorted(e["data"]["task_id"] for e in consumer.effects()) == [t.pk for t in tasks]
    assert {d.outcome for d in fake.deliveries} == {SUCCESS}
    assert {d.topic for d in fake.deliveries} == {"task-events"}  # nobody serves task-updates


def test_a_failed_handler_is_acknowledged_and_the_apps_retry_has_one_effect(
    alice, live_server, settings, consumer
):
    from events.dispatch import retry_consumer_failures
    from events.relay import relay_pending

    consumer.fail_with = RetryLater("try again")
    consumer.fail_times = 2
    fake = start_sidecar(settings, app_url=live_server.url, auto_deliver=True)
    try:
        make_task(alice)
        relay_pending()
        fake.drain(timeout=10)
    finally:
        fake.stop()
    for _ in range(2):  # the retry pass, each time the held event's next attempt is due
        retry_consumer_failures(now=ConsumerFailure.objects.get().next_attempt_at)

    assert [d.outcome for d in fake.deliveries] == [SUCCESS]  # the partition went on at once
    assert len(consumer.effects()) == 1
    assert consumer.calls == 3
    assert not ConsumerFailure.objects.exists()


def test_a_republished_event_keeps_its_id_and_has_no_second_effect(alice, sidecar, consumer):
    """A relay publishes, then dies before recording it; its lease runs out; the next relay
    publishes the same rows again. Same CloudEvent ids, so consumers see duplicates only."""
    from events.relay import claim_batch, relay_pending
    from events.transports import DaprTransport

    make_task(alice)
    token, claimed = claim_batch()
    DaprTransport().publish(claimed)  # ...and the relay crashes here
    OutboxEvent.objects.filter(locked_by=token).update(locked_until=None)
    assert relay_pending().delivered == 2

    ids = [e["id"] for e in sidecar.events("task-events")]
    assert len(ids) == 2 and len(set(ids)) == 1
    assert ids[0] == str(OutboxEvent.objects.get(topic="task-events").id)
    for event in sidecar.events("task-events"):
        assert sidecar.deliver("task-events", event) == SUCCESS
    assert len(consumer.effects()) == 1


def _without(envelope: dict, name: str) -> dict:
    return {k: v for k, v in envelope.items() if k != name}


MALFORMED = {
    "no-specversion": lambda e: _without(e, "specversion"),
    "no-id": lambda e: _without(e, "id"),
    "no-source": lambda e: _without(e, "source"),
    "no-type": lambda e: _without(e, "type"),
    "no-data": lambda e: _without(e, "data"),
    "old-specversion": lambda e: {**e, "specversion": "0.3"},
    "unknown-type": lambda e: {**e, "type": "com.tideline.task.exploded.v1"},
    "foreign-type": lambda e: {**e, "type": "com.dapr.event.sent"},
    "data-not-object": lambda e: {**e, "data": ["not", "an", "object"]},
    "data-without-task-id": lambda e: {**e, "data": {"foo": 1}},
    "task-id-not-a-number": lambda e: {**e, "data": {**e["data"], "task_id": "abc"}},
    "task-id-a-boolean": lambda e: {**e, "data": {**e["data"], "task_id": True}},
}


def test_a_malformed_event_is_dropped_with_no_effect(sidecar, consumer, envelope):
    # One test for all variants: each live-server test costs a database flush.
    outcomes = {
        name: sidecar.deliver("task-events", malform(envelope))
        for name, malform in MALFORMED.items()
    }

    assert outcomes == dict.fromkeys(MALFORMED, DROP)
    assert consumer.effects() == []
    assert consumer.calls == 0
    assert not ProcessedEvent.objects.exists()
    dead = [p for p in sidecar.published if p.dead_letter]
    assert [p.topic for p in dead] == ["tideline-dead-letter"] * len(MALFORMED)


def test_a_body_that_is_not_a_cloudevent_is_dropped(live_server, consumer, dapr_callbacks):
    bodies = {
        "bad-json": b"{not json",
        "empty": b"",
        "array": b"[1, 2]",
        "string": b'"a string"',
        "not-utf8": b"\xff\xfe",
    }
    for name, body in bodies.items():
        response = requests.post(
            f"{live_server.url}/events/task-events", data=body, headers=CE, timeout=5
        )
        assert (response.status_code, response.json()) == (200, {"status": "DROP"}), name
    assert consumer.effects() == []
    assert consumer.calls == 0


def test_retry_later_is_held_and_a_redelivery_does_not_run_the_consumer_again(
    sidecar, consumer, envelope
):
    from events.dispatch import retry_consumer_failures

    consumer.fail_with = RetryLater("the mail server is down")
    consumer.fail_after_effect = True  # the effect is rolled back with the failed handler

    assert sidecar.deliver("task-events", envelope) == SUCCESS  # held by the app
    assert consumer.effects() == []
    assert not ProcessedEvent.objects.exists()

    consumer.fail_with = None
    assert sidecar.deliver("task-events", envelope) == SUCCESS  # a duplicate: skipped
    assert consumer.calls == 1
    retry_consumer_failures(now=ConsumerFailure.objects.get().next_attempt_at)
    assert sidecar.deliver("task-events", envelope) == SUCCESS  # handled: ProcessedEvent
    assert len(consumer.effects()) == 1
    assert consumer.calls == 2


@pytest.mark.parametrize(
    "error",
    [OperationalError("the database is unavailable"), ValueError("a handler bug")],
    ids=["database", "crash"],
)
def test_other_handler_failures_are_held_never_500(sidecar, consumer, envelope, error):
    consumer.fail_with = error
    assert sidecar.deliver("task-events", envelope) == SUCCESS
    assert sidecar.deliveries[-1].http_status == 200
    assert consumer.effects() == []
    assert ConsumerFailure.objects.get().last_error.startswith(type(error).__name__)


# --- tokens, jobs, probes ----------------------------------------------------------------


def test_with_app_api_token_the_callbacks_need_it(
    alice, live_server, settings, consumer, job_calls
):
    fake = start_sidecar(settings, app_url=live_server.url, app_token="app-secret")
    make_task(alice)
    envelope = build_envelope(OutboxEvent.objects.get(topic="task-events"))
    body = json.dumps(envelope)
    try:
        for headers in ({}, {"dapr-api-token": "wrong"}, {"dapr-api-token": ""}):
            for path in ("/events/task-events", "/job/test-job-1", "/job/unknown-job"):
                response = requests.post(
                    f"{live_server.url}{path}", data=body, headers={**CE, **headers}, timeout=5
                )
                assert response.status_code == 401, (path, headers)
        assert consumer.effects() == []
        assert job_calls == []

        for path in ("/dapr/subscribe", "/healthz", "/readyz"):
            assert requests.get(f"{live_server.url}{path}", timeout=5).status_code == 200

        # The sidecar sends the token: its calls go through.
        assert fake.deliver("task-events", envelope) == SUCCESS
        assert len(consumer.effects()) == 1
        fake_job = requests.post(
            f"{fake.url}/v1.0/jobs/test-job-1",
            json={"dueTime": "1s", "data": {"n": 1}},
            timeout=5,
        )
        assert fake_job.status_code == 204
        assert fake.trigger_job("test-job-1") == 200
        assert job_calls == [("test-job-1", {"n": 1})]
    finally:
        fake.stop()


def test_an_unknown_job_is_404(live_server, sidecar):
    response = requests.post(f"{live_server.url}/job/unknown-job", json={}, timeout=5)
    assert response.status_code == 404

    requests.post(
        f"{sidecar.url}/v1.0/jobs/unknown-job", json={"dueTime": "1s", "data": {}}, timeout=5
    ).raise_for_status()
    assert sidecar.trigger_job("unknown-job") == 404
    assert "unknown-job" not in sidecar.jobs  # 404: done, never retried


def test_a_job_handler_receives_exactly_the_jobs_data(sidecar, job_calls):
    data = {"task_id": 42, "remind_at": "2030-01-01T09:00:00Z", "nested": {"a": [1, 2]}}
    requests.post(
        f"{sidecar.url}/v1.0/jobs/test-job-reminder-42",
        json={"dueTime": "2030-01-01T09:00:00Z", "data": data},
        timeout=5,
    ).raise_for_status()

    assert sidecar.trigger_job("test-job-reminder-42") == 200

    assert job_calls == [("test-job-reminder-42", data)]
    assert "test-job-reminder-42" not in sidecar.jobs  # a one-shot job is done


def test_probes_answer_without_a_token(live_server):
    health = requests.get(f"{live_server.url}/healthz", timeout=5)
    ready = requests.get(f"{live_server.url}/readyz", timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok"})


def test_callback_paths_are_exact(live_server):
    assert requests.get(f"{live_server.url}/dapr/subscribe/", timeout=5).status_code == 404
    response = requests.post(f"{live_server.url}/events/task-events/", data=b"{}", timeout=5)
    assert response.status_code == 404


# --- idempotent consumption ---------------------------------------------------------------


def test_the_same_event_delivered_twice_has_one_effect(sidecar, consumer, envelope):
    assert sidecar.deliver("task-events", envelope) == SUCCESS
    assert sidecar.deliver("task-events", envelope) == SUCCESS

    assert len(consumer.effects(envelope["id"])) == 1
    assert ProcessedEvent.objects.filter(event_id=envelope["id"]).count() == 1


@pytest.mark.service("postgres")
def test_the_same_event_delivered_concurrently_has_one_effect(
    sidecar, consumer, envelope, settings
):
    if connection.vendor != "postgresql":
        pytest.skip(
            "concurrent transactions need PostgreSQL: on the in-memory SQLite test database "
            "the live server's threads share one connection"
        )
    consumer.sleep = 0.2  # inside the handler's transaction: the deliveries overlap

    outcomes = run_in_threads(6, lambda _: sidecar.deliver("task-events", envelope))

    assert outcomes == [SUCCESS] * 6
    assert len(consumer.effects(envelope["id"])) == 1
    assert ProcessedEvent.objects.filter(event_id=envelope["id"]).count() == 1
    assert consumer.calls == 1  # the others waited on the unique key, then saw a duplicate


@pytest.mark.django_db(transaction=True)
def test_concurrent_in_process_deliveries_have_one_effect(alice, consumer):
    """The embedded transport's path (dispatch.deliver) from several threads at once."""
    make_task(alice)
    envelope = build_envelope(OutboxEvent.objects.get(topic="task-events"))
    if connection.vendor == "postgresql":
        consumer.sleep = 0.2

    outcomes = run_in_threads(6, lambda _: deliver("task-events", envelope))

    # SQLite may refuse a concurrent writer (RETRY: Dapr redelivers); never a second effect.
    assert set(outcomes) <= {"SUCCESS", "RETRY"}
    for _ in range(outcomes.count("RETRY")):  # the sidecar's redeliveries
        assert deliver("task-events", envelope) == "SUCCESS"
    assert len(consumer.effects(envelope["id"])) == 1
    assert ProcessedEvent.objects.filter(event_id=envelope["id"]).count() == 1
