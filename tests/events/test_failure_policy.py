"""The failure policy: a consumer that keeps failing gets EVENT_MAX_ATTEMPTS attempts, then the
event is dead-lettered (DROP), kept for the operator, replayable, and the stream goes on."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
import requests
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from events.cloudevents import CloudEvent, build_envelope
from events.dispatch import RetryLater, Unprocessable, deliver
from events.models import ConsumerFailure, DeadLetter, FailureState, OutboxEvent, OutboxState
from events.registry import EventType
from events.relay import relay_pending
from events.routing import Consumer
from tasks import services
from tests.events.helpers import TEST_CONSUMER, add_routes, start_sidecar
from tests.factories import make_task
from tests.support.concurrency import run_in_threads
from tests.support.fake_dapr import DROP, RETRY, SUCCESS, RetryPolicy

CE = {"Content-Type": "application/cloudevents+json"}
CONSUMER = f"{TEST_CONSUMER}.task_events"  # the recording consumer of task-events
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def small_budget(settings):
    settings.EVENT_MAX_ATTEMPTS = 3
    settings.EVENT_RETRY_BASE_SECONDS = 15.0
    settings.EVENT_RETRY_MAX_SECONDS = 900.0
    return settings


@pytest.fixture
def envelope(alice):
    """A real task.created CloudEvent for task-events, as the relay builds it."""
    make_task(alice, title="Poison")
    return build_envelope(OutboxEvent.objects.get(topic="task-events"))


def call(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def make_due() -> None:
    """Let the time pass until every waiting outbox row is due (the backoff is tested apart)."""
    OutboxEvent.objects.filter(state=OutboxState.PENDING).update(next_attempt_at=timezone.now())


def dead_letter() -> ConsumerFailure:
    return ConsumerFailure.objects.get(state__in=[FailureState.DEAD, FailureState.REPLAYED])


# --- the budget, seen by the sidecar ------------------------------------------------------


def test_a_handler_that_always_fails_gets_exactly_the_budget_then_drop(sidecar, consumer, envelope):
    consumer.fail_with = ValueError("a handler bug")

    outcomes = [sidecar.deliver("task-events", envelope) for _ in range(3)]

    assert outcomes == [RETRY, RETRY, DROP]
    assert consumer.calls == 3
    assert consumer.effects() == []
    dead = [p for p in sidecar.published if p.dead_letter]
    assert [(p.topic, p.event["id"]) for p in dead] == [("tideline-dead-letter", envelope["id"])]
    letter = DeadLetter.objects.get()
    assert (letter.consumer, letter.event_id, letter.state) == (
        CONSUMER,
        envelope["id"],
        FailureState.DEAD,
    )
    assert letter.attempts == 3
    assert letter.last_error == "ValueError: a handler bug"
    assert letter.event_type == "task.created"
    assert letter.topic == "task-events"
    assert letter.partition_key == str(envelope["data"]["task_id"])
    assert letter.first_failed_at <= letter.last_failed_at == letter.dead_at


def test_the_events_endpoint_answers_drop_after_the_budget(live_server, consumer, envelope):
    """The contract the sidecar relies on: after EVENT_MAX_ATTEMPTS failed attempts of a
    consumer, ``/events/<topic>`` answers DROP (and keeps answering it)."""
    consumer.fail_with = RetryLater("the mail server is down")

    def post() -> tuple[int, dict]:
        response = requests.post(
            f"{live_server.url}/events/task-events",
            data=json.dumps(envelope),
            headers=CE,
            timeout=5,
        )
        return response.status_code, response.json()

    answers = [post() for _ in range(4)]

    retry, drop = (200, {"status": "RETRY"}), (200, {"status": "DROP"})
    assert answers == [retry, retry, drop, drop]
    assert DeadLetter.objects.get().attempts == 4  # the redelivery after the DROP counted too


def test_the_sidecar_redelivers_until_the_app_drops_to_the_dead_letter_topic(
    alice, live_server, settings, consumer
):
    """Dapr's path end to end: the resiliency policy redelivers, the app answers DROP at its
    budget, the sidecar dead-letters the event, and the partition moves on."""
    poison = make_task(alice, title="Poison")
    consumer.fail_with = ValueError("a handler bug")
    consumer.fail_times = settings.EVENT_MAX_ATTEMPTS  # then the consumer works again
    fake = start_sidecar(
        settings,
        app_url=live_server.url,
        auto_deliver=True,
        retry_policy=RetryPolicy(max_retries=settings.EVENT_MAX_ATTEMPTS, interval=0.01),
    )
    try:
        relay_pending()
        fake.drain(timeout=10)
        later = make_task(alice, title="Later")
        services.task_update(task=poison, data={"title": "Poison, edited"})
        relay_pending()
        fake.drain(timeout=10)
    finally:
        fake.stop()

    poison_id = str(OutboxEvent.objects.filter(topic="task-events").order_by("seq")[0].id)
    assert [d.outcome for d in fake.deliveries if d.event_id == poison_id] == [
        RETRY,
        RETRY,
        DROP,
    ]
    assert [p.event["id"] for p in fake.published if p.dead_letter] == [poison_id]
    assert {d.outcome for d in fake.deliveries if d.event_id != poison_id} == {SUCCESS}
    handled = [(e["event_type"], e["data"]["task_id"]) for e in consumer.effects()]
    assert handled == [("task.created", later.pk), ("task.updated", poison.pk)]
    assert DeadLetter.objects.get().event_id == poison_id


def test_an_unprocessable_event_is_dead_lettered_at_once(sidecar, consumer, envelope):
    consumer.fail_with = Unprocessable("task 16 has no owner")

    assert sidecar.deliver("task-events", envelope) == DROP

    assert consumer.calls == 1
    letter = DeadLetter.objects.get()
    assert (letter.state, letter.attempts) == (FailureState.DEAD, 1)
    assert letter.last_error == "Unprocessable: task 16 has no owner"
    assert [p.topic for p in sidecar.published if p.dead_letter] == ["tideline-dead-letter"]


def test_a_malformed_event_is_still_dropped_without_a_consumer_attempt(consumer, envelope):
    assert deliver("task-events", {**envelope, "specversion": "0.3"}) == "DROP"
    assert consumer.calls == 0
    assert not ConsumerFailure.objects.exists()


def test_a_success_after_failures_clears_the_failure_record(consumer, envelope):
    consumer.fail_with = RetryLater("not now")
    consumer.fail_times = 2

    assert deliver("task-events", envelope) == "RETRY"
    failing = ConsumerFailure.objects.get()
    assert (failing.state, failing.attempts, failing.last_error) == (
        FailureState.RETRYING,
        1,
        "RetryLater: not now",
    )
    assert deliver("task-events", envelope) == "RETRY"
    assert ConsumerFailure.objects.get().attempts == 2

    assert deliver("task-events", envelope) == "SUCCESS"

    assert not ConsumerFailure.objects.exists()
    assert len(consumer.effects()) == 1


def test_each_consumer_has_its_own_budget(monkeypatch, consumer, envelope):
    """A second consumer of the topic that works is not held back, nor run twice."""
    calls: list[str] = []
    steady = Consumer(
        name=f"{TEST_CONSUMER}.steady",
        handler=lambda event: calls.append(event.id),
        event_types=tuple(EventType),
        role=TEST_CONSUMER,
    )
    add_routes(monkeypatch, consumers={"task_events": (steady,)})
    consumer.fail_with = ValueError("a handler bug")

    outcomes = [deliver("task-events", envelope) for _ in range(3)]

    assert outcomes == ["RETRY", "RETRY", "DROP"]
    assert calls == [envelope["id"]]  # transactional: handled once, duplicates ignored
    assert [(f.consumer, f.state) for f in ConsumerFailure.objects.all()] == [
        (CONSUMER, FailureState.DEAD)
    ]


# --- the embedded default ---------------------------------------------------------------


@pytest.fixture
def poison_consumer(monkeypatch):
    """A consumer of task-events that fails on the events in ``poison`` (by id)."""

    class PoisonConsumer:
        def __init__(self) -> None:
            self.poison: set[str] = set()
            self.handled: list[tuple[str, int]] = []
            self.attempts: dict[str, int] = {}

        def handle(self, event: CloudEvent) -> None:
            self.attempts[event.id] = self.attempts.get(event.id, 0) + 1
            if event.id in self.poison:
                raise ValueError(f"cannot handle {event.id}")
            self.handled.append((str(event.event_type), event.data["task_id"]))

    recorder = PoisonConsumer()
    add_routes(
        monkeypatch,
        consumers={
            "task_events": (
                Consumer(
                    name=CONSUMER,
                    handler=recorder.handle,
                    event_types=tuple(EventType),
                    role=TEST_CONSUMER,
                    transactional=False,
                ),
            )
        },
    )
    return recorder


def test_in_process_a_poison_event_is_dead_lettered_and_the_stream_goes_on(
    alice, poison_consumer, settings
):
    task_a = make_task(alice, title="A")
    first = OutboxEvent.objects.get(topic="task-events")
    poison_consumer.poison.add(str(first.id))
    services.task_update(task=task_a, data={"title": "A, edited"})  # waits behind the poison
    task_b = make_task(alice, title="B")

    relay_pending()
    assert poison_consumer.handled == [("task.created", task_b.pk)]  # A's update waits
    for _ in range(settings.EVENT_MAX_ATTEMPTS - 1):
        make_due()
        relay_pending()

    assert poison_consumer.attempts[str(first.id)] == settings.EVENT_MAX_ATTEMPTS
    assert poison_consumer.handled == [
        ("task.created", task_b.pk),
        ("task.updated", task_a.pk),  # flowed once the poison was dead-lettered
    ]
    first.refresh_from_db()
    assert first.state == OutboxState.DELIVERED  # done: nothing waits behind it any more
    assert first.attempts == settings.EVENT_MAX_ATTEMPTS
    assert "dead-lettered" in first.last_error
    assert not OutboxEvent.objects.filter(state=OutboxState.PENDING).exists()
    letter = DeadLetter.objects.get()
    assert (letter.event_id, letter.partition_key) == (str(first.id), str(task_a.pk))
    assert letter.attempts == settings.EVENT_MAX_ATTEMPTS


def test_in_process_retries_follow_the_failure_policy_backoff(alice, poison_consumer, settings):
    """15 s doubling (up to 15 min): not the outbox's own 1 s..60 s publishing backoff."""
    settings.EVENT_MAX_ATTEMPTS = 10
    make_task(alice)
    row = OutboxEvent.objects.get(topic="task-events")
    poison_consumer.poison.add(str(row.id))

    waits = []
    for _ in range(6):
        make_due()
        relay_pending()
        row.refresh_from_db()
        waits.append((row.next_attempt_at - row.last_attempt_at).total_seconds())

    expected = [15, 30, 60, 120, 240, 480]
    for wait, full in zip(waits, expected, strict=True):
        assert 0.8 * full - 1 <= wait <= full + 1  # with jitter: the top fifth below it
    assert row.state == OutboxState.PENDING
    assert "will retry (attempt 6 of 10 failed): ValueError" in row.last_error


# --- what the operator sees ---------------------------------------------------------------


@pytest.fixture
def dead(consumer, envelope, settings) -> ConsumerFailure:
    """One dead letter: the recording consumer failed its whole budget on ``envelope``."""
    consumer.fail_with = ValueError("a handler bug")
    for _ in range(settings.EVENT_MAX_ATTEMPTS):
        deliver("task-events", envelope)
    consumer.fail_with = None
    return DeadLetter.objects.get()


def test_dead_letters_are_listed_in_the_admin(admin_client, dead, envelope):
    response = admin_client.get("/admin/events/deadletter/")

    assert response.status_code == 200
    page = response.content.decode()
    for shown in (
        CONSUMER,
        "task.created",
        envelope["id"],
        "task-events",
        str(envelope["data"]["task_id"]),
        "ValueError: a handler bug",
        "Dead letter",
        "Replay",
    ):
        assert shown in page, shown
    detail = admin_client.get(f"/admin/events/deadletter/{dead.pk}/change/")
    assert detail.status_code == 200
    assert "specversion" in detail.content.decode()  # the stored CloudEvent


def test_events_status_counts_the_dead_letters(dead, envelope):
    status = json.loads(call("events_status", "--json"))
    assert (status["dead_letters"], status["consumers_retrying"]) == (1, 0)

    text = call("events_status")
    assert "dead_letters: 1" in text
    assert re.search(
        rf"dead letter #{dead.pk} {re.escape(CONSUMER)} task.created {envelope['id']}"
        rf" task-events key={envelope['data']['task_id']} attempts=3: ValueError: a handler bug",
        text,
    )


def test_the_replay_command_runs_the_consumer_once(consumer, dead, envelope):
    out = call("replay_dead_letters", str(dead.pk))

    assert f"replayed #{dead.pk} {CONSUMER}" in out
    assert [e["event_id"] for e in consumer.effects()] == [envelope["id"]]
    dead.refresh_from_db()
    assert dead.state == FailureState.REPLAYED
    assert dead.replayed_at is not None

    again = call("replay_dead_letters", str(dead.pk))

    assert "0 replayed, 0 failed (still dead), 1 skipped" in again
    assert len(consumer.effects()) == 1
    assert json.loads(call("events_status", "--json"))["dead_letters"] == 0


def test_replaying_an_event_the_consumer_already_handled_does_nothing(consumer, dead, envelope):
    call("replay_dead_letters", "--all")
    assert len(consumer.effects()) == 1
    # Two operators replayed it at once: the other one still finds it dead.
    ConsumerFailure.objects.filter(pk=dead.pk).update(state=FailureState.DEAD)
    calls = consumer.calls

    assert "1 replayed" in call("replay_dead_letters", "--all")

    assert consumer.calls == calls  # its ProcessedEvent record: the handler did not run
    assert len(consumer.effects()) == 1
    assert DeadLetter.objects.get().state == FailureState.REPLAYED


def test_a_failed_replay_keeps_the_dead_letter_with_the_new_error(consumer, dead):
    consumer.fail_with = RetryLater("the mail server is still down")

    with pytest.raises(CommandError, match="1 dead letter"):
        call("replay_dead_letters", "--consumer", CONSUMER)

    dead.refresh_from_db()
    assert dead.state == FailureState.DEAD
    assert dead.last_error == "RetryLater: the mail server is still down"
    assert dead.attempts == 4
    assert consumer.effects() == []


def test_the_replay_command_needs_a_choice(dead):
    with pytest.raises(CommandError, match="one of them"):
        call("replay_dead_letters")
    with pytest.raises(CommandError, match="No dead letter with id 999"):
        call("replay_dead_letters", "999")


def test_the_admin_replay_action_is_idempotent(admin_client, consumer, dead, envelope):
    action = {"action": "replay_selected", "_selected_action": [dead.pk]}

    first = admin_client.post("/admin/events/deadletter/", action, follow=True)

    assert "1 dead letter(s) replayed, 0 failed" in first.content.decode()
    dead.refresh_from_db()
    assert dead.state == FailureState.REPLAYED
    assert [e["event_id"] for e in consumer.effects()] == [envelope["id"]]

    second = admin_client.post("/admin/events/deadletter/", action, follow=True)

    assert "0 dead letter(s) replayed, 0 failed" in second.content.decode()
    assert "1 skipped" in second.content.decode()
    assert len(consumer.effects()) == 1


# --- counting under concurrency, and the sidecar's policy -----------------------------------


@pytest.mark.service("postgres")
@pytest.mark.django_db(transaction=True)
def test_concurrent_failed_deliveries_count_every_attempt_and_dead_letter_once(
    alice, consumer, settings, caplog
):
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency is tested on PostgreSQL (REQUIRE_SERVICES=1 CI)")
    make_task(alice)
    envelope = build_envelope(OutboxEvent.objects.get(topic="task-events"))
    consumer.fail_with = ValueError("a handler bug")
    consumer.sleep = 0.05

    outcomes = run_in_threads(8, lambda _: deliver("task-events", envelope))

    # Each attempt is counted once, in turn: the first two find attempts left, the third
    # spends the budget, and every later one finds a dead letter.
    assert sorted(outcomes) == ["DROP"] * 6 + ["RETRY"] * 2
    letter = ConsumerFailure.objects.get()
    assert (letter.state, letter.attempts) == (FailureState.DEAD, 8)
    assert letter.dead_at is not None
    assert consumer.calls == 8
    transitions = [r for r in caplog.records if r.getMessage().startswith("event dead-lettered")]
    assert len(transitions) == 1
    assert transitions[0].levelname == "ERROR"


def test_the_sidecar_gives_the_app_its_whole_budget():
    """dapr/resiliency.yaml's inbound retries are finite, and daprd delivers at least
    EVENT_MAX_ATTEMPTS times (the default), so the app, not daprd, answers DROP."""
    spec = yaml.safe_load((ROOT / "dapr" / "resiliency.yaml").read_text())["spec"]
    inbound = spec["targets"]["components"]["pubsub-kafka"]["inbound"]
    policy = spec["policies"]["retries"][inbound["retry"]]
    default_attempts = 10  # EVENT_MAX_ATTEMPTS's default in todo_project/settings.py

    assert policy["maxRetries"] != -1
    assert policy["maxRetries"] + 1 >= default_attempts
    assert policy["policy"] == "constant"
    assert dt.timedelta(seconds=int(policy["duration"].removesuffix("s"))) * policy[
        "maxRetries"
    ] <= dt.timedelta(minutes=10)  # the retries hold the partition: keep them short
