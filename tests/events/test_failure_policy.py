"""The failure policy: the app holds the events a consumer failed and retries them itself, so
the stream never waits; after EVENT_MAX_ATTEMPTS attempts in all the event is a dead letter,
kept for the operator, published to the dead-letter topic, and replayable."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.utils import timezone

from events import dispatch
from events.cloudevents import CloudEvent, build_envelope, parse_envelope
from events.dispatch import (
    RetryLater,
    SidecarMisconfigured,
    Unprocessable,
    deliver,
    retry_consumer_failures,
)
from events.failures import FailureKind, record_failure
from events.models import ConsumerFailure, DeadLetter, FailureState, OutboxEvent, OutboxState
from events.registry import EventType
from events.relay import prune, relay_pending
from events.routing import Consumer
from notifications.consumers import schedule_reminder_job
from tasks import services
from tasks.consumers import spawn_on_completion
from tests.events.helpers import TEST_CONSUMER, add_routes, start_sidecar
from tests.factories import make_task
from tests.support.concurrency import run_in_threads
from tests.support.fake_dapr import DROP, SUCCESS, RetryPolicy

CONSUMER = f"{TEST_CONSUMER}.task_events"  # the recording consumer of task-events
DEAD_LETTER_TOPIC = "tideline-dead-letter"
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


def held(event_id: str | None = None) -> ConsumerFailure:
    rows = ConsumerFailure.objects.all()
    return rows.get(event_id=event_id) if event_id else rows.get()


def retry_until_dead(event_id: str | None = None) -> int:
    """Run the retry pass each time the held event comes due, until it is dead; the passes."""
    passes = 0
    while held(event_id).state == FailureState.RETRYING:
        retry_consumer_failures(now=held(event_id).next_attempt_at)
        passes += 1
        assert passes < 20, "the retries never end"
    return passes


def dead_letter_rows() -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(topic=DEAD_LETTER_TOPIC))


def seconds(delta: dt.timedelta) -> float:
    return delta.total_seconds()


# --- the budget, and the stream that never waits -----------------------------------------


def test_a_failing_consumer_is_attempted_exactly_the_budget_each_retry_after_its_backoff(
    sidecar, consumer, envelope
):
    consumer.fail_with = ValueError("a handler bug")

    # The first delivery fails and is acknowledged: the partition moves on at once.
    assert sidecar.deliver("task-events", envelope) == SUCCESS
    assert consumer.calls == 1
    first = held()
    assert (first.state, first.attempts, first.topic) == (FailureState.RETRYING, 1, "task-events")
    assert 0.8 * 15 <= seconds(first.next_attempt_at - first.last_failed_at) <= 15

    # Each retry comes no earlier than its backoff (15 s, then 30 s, with jitter).
    waits = []
    for attempt in (2, 3):
        due = held().next_attempt_at
        assert retry_consumer_failures(now=due - dt.timedelta(seconds=1)) == {}
        assert consumer.calls == attempt - 1
        waits.append(seconds(due - held().last_failed_at))
        retry_consumer_failures(now=due)
        assert consumer.calls == attempt
    assert 0.8 * 15 <= waits[0] <= 15 and 0.8 * 30 <= waits[1] <= 30

    letter = DeadLetter.objects.get()
    assert (letter.consumer, letter.event_id, letter.state, letter.attempts) == (
        CONSUMER,
        envelope["id"],
        FailureState.DEAD,
        3,
    )
    assert letter.last_error == "ValueError: a handler bug"
    assert (letter.event_type, letter.partition_key) == ("task.created", envelope["subject"])
    assert letter.first_failed_at < letter.last_failed_at == letter.dead_at
    assert consumer.effects() == []
    # No more attempts, however late the next pass.
    assert retry_consumer_failures(now=timezone.now() + dt.timedelta(days=1)) == {}
    assert consumer.calls == 3

    # The app publishes the event to the dead-letter topic itself, its CloudEvent id kept.
    [row] = dead_letter_rows()
    stored = build_envelope(row)  # the CloudEvent as daprd delivered it
    assert {name: stored[name] for name in ("id", "type", "subject", "data")} == {
        name: envelope[name] for name in ("id", "type", "subject", "data")
    }
    relay_pending()
    published = [p.event["id"] for p in sidecar.published if p.topic == DEAD_LETTER_TOPIC]
    assert published == [envelope["id"]]
    assert [d.outcome for d in sidecar.deliveries] == [SUCCESS]  # daprd never had to retry


def test_through_the_sidecar_a_poison_event_does_not_delay_the_next_on_its_partition(
    alice, live_server, settings, poison_consumer
):
    """Dapr's Kafka model: one message in flight per partition. The poison is acknowledged,
    so the next event of the same task (the same partition) is delivered at once."""
    poison = make_task(alice, title="Poison")
    poison_id = str(OutboxEvent.objects.get(topic="task-events").id)
    poison_consumer.poison.add(poison_id)
    fake = start_sidecar(
        settings,
        app_url=live_server.url,
        auto_deliver=True,
        retry_policy=RetryPolicy(max_retries=-1, interval=5.0),  # a retry would show
    )
    try:
        relay_pending()
        services.task_update(task=poison, data={"title": "Poison, edited"})
        relay_pending()
        fake.drain(timeout=10)
    finally:
        fake.stop()

    outcomes = [(d.event_id == poison_id, d.outcome) for d in fake.deliveries]
    assert outcomes == [(True, SUCCESS), (False, SUCCESS)]
    assert poison_consumer.handled == [("task.updated", poison.pk)]
    assert held(poison_id).state == FailureState.RETRYING  # the poison is still being retried

    retry_until_dead(poison_id)

    assert poison_consumer.attempts[poison_id] == settings.EVENT_MAX_ATTEMPTS
    assert [parse_envelope(row.data).id for row in dead_letter_rows()] == [poison_id]


def test_an_unprocessable_event_is_dropped_at_once_and_daprd_dead_letters_it(
    sidecar, consumer, envelope
):
    consumer.fail_with = Unprocessable("task 16 has no owner")

    assert sidecar.deliver("task-events", envelope) == DROP

    assert consumer.calls == 1
    letter = DeadLetter.objects.get()
    assert (letter.state, letter.attempts) == (FailureState.DEAD, 1)
    assert letter.last_error == "Unprocessable: task 16 has no owner"
    assert [p.topic for p in sidecar.published if p.dead_letter] == [DEAD_LETTER_TOPIC]
    assert dead_letter_rows() == []  # daprd publishes it: the app does not again


def test_a_malformed_event_is_still_dropped_without_a_consumer_attempt(consumer, envelope):
    assert deliver("task-events", {**envelope, "specversion": "0.3"}) == "DROP"
    assert consumer.calls == 0
    assert not ConsumerFailure.objects.exists()


def test_the_answer_is_retry_only_when_the_failure_cannot_be_recorded(
    monkeypatch, consumer, envelope
):
    consumer.fail_with = ValueError("a handler bug")

    def database_down(*args, **kwargs):
        raise OperationalError("the database is unavailable")

    monkeypatch.setattr(dispatch, "record_failure", database_down)

    assert deliver("task-events", envelope) == "RETRY"  # daprd delivers it again
    assert not ConsumerFailure.objects.exists()


def test_a_success_on_a_retry_finishes_the_held_event(consumer, envelope):
    consumer.fail_with = RetryLater("not now")
    consumer.fail_times = 2

    assert deliver("task-events", envelope) == "SUCCESS"
    assert (held().attempts, held().last_error) == (1, "RetryLater: not now")
    retry_consumer_failures(now=held().next_attempt_at)
    assert held().attempts == 2

    assert retry_consumer_failures(now=held().next_attempt_at) == {"handled": 1}

    assert not ConsumerFailure.objects.exists()
    assert len(consumer.effects()) == 1


def test_a_duplicate_delivery_of_a_held_event_does_not_run_the_consumer(
    sidecar, consumer, envelope
):
    consumer.fail_with = ValueError("a handler bug")
    assert sidecar.deliver("task-events", envelope) == SUCCESS

    assert sidecar.deliver("task-events", envelope) == SUCCESS  # daprd's at-least-once
    assert (consumer.calls, held().attempts) == (1, 1)

    retry_until_dead()
    calls = consumer.calls
    assert sidecar.deliver("task-events", envelope) == SUCCESS  # given up on: not run again
    assert (consumer.calls, held().attempts) == (calls, 3)


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

    assert deliver("task-events", envelope) == "SUCCESS"
    retry_until_dead()
    assert deliver("task-events", envelope) == "SUCCESS"

    assert calls == [envelope["id"]]  # transactional: handled once, the duplicate ignored
    assert consumer.calls == 3
    assert [(f.consumer, f.state) for f in ConsumerFailure.objects.all()] == [
        (CONSUMER, FailureState.DEAD)
    ]


def test_a_configuration_error_is_retried_without_spending_the_budget(consumer, envelope, caplog):
    consumer.fail_with = SidecarMisconfigured("401 invalid api token")

    assert deliver("task-events", envelope) == "SUCCESS"
    waits = [seconds(held().next_attempt_at - held().last_failed_at)]
    for _ in range(5):  # more than the budget
        retry_consumer_failures(now=held().next_attempt_at)
        waits.append(seconds(held().next_attempt_at - held().last_failed_at))

    row = held()
    assert (row.state, row.attempts, row.configuration_failures) == (FailureState.RETRYING, 0, 6)
    assert waits[-1] > 4 * waits[0]  # with backoff
    refused = [r for r in caplog.records if "for its configuration" in r.getMessage()]
    assert len(refused) == 6 and {r.levelname for r in refused} == {"ERROR"}

    consumer.fail_with = None  # the token is fixed
    retry_consumer_failures(now=row.next_attempt_at)
    assert len(consumer.effects()) == 1
    assert not ConsumerFailure.objects.exists()


def test_the_reminder_job_sync_reads_a_refused_token_as_a_configuration_error(
    alice, fake_dapr, settings
):
    task = make_task(alice, title="Token")
    event = parse_envelope(build_envelope(OutboxEvent.objects.get(topic="task-events")))
    fake_dapr.api_token = "the-sidecars-token"
    settings.DAPR_API_TOKEN = "a-token-being-rotated"

    with pytest.raises(SidecarMisconfigured, match="401"):
        schedule_reminder_job(event)

    assert dispatch.classify(SidecarMisconfigured("x")) is FailureKind.CONFIGURATION
    assert task.pk == event.data["task_id"]


def test_spawning_from_an_impossible_next_occurrence_is_unprocessable(alice):
    task = make_task(alice, recurrence_type="daily")
    event = CloudEvent(
        id="e-1",
        source="test",
        type="com.tideline.task.completed.v1",
        event_type=EventType.TASK_COMPLETED,
        data={
            "task_id": task.pk,
            "user_id": alice.pk,
            "task_data": {"next_occurrence_at": "2030-02-30T09:00:00Z"},
        },
        topic="task-recurrence",
        raw={},
    )

    with pytest.raises(Unprocessable, match="next_occurrence_at is not a date-time"):
        spawn_on_completion(event)


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


def test_in_process_a_poison_event_holds_back_nothing(alice, poison_consumer, settings):
    task_a = make_task(alice, title="A")
    first = OutboxEvent.objects.get(topic="task-events")
    poison_consumer.poison.add(str(first.id))
    services.task_update(task=task_a, data={"title": "A, edited"})
    task_b = make_task(alice, title="B")

    relay_pending()

    assert sorted(poison_consumer.handled) == [
        ("task.created", task_b.pk),
        ("task.updated", task_a.pk),  # the same task's next event did not wait
    ]
    assert set(OutboxEvent.objects.values_list("state", flat=True)) == {OutboxState.DELIVERED}
    first.refresh_from_db()
    assert (first.attempts, first.last_error) == (1, "")

    retry_until_dead(str(first.id))

    assert poison_consumer.attempts[str(first.id)] == settings.EVENT_MAX_ATTEMPTS
    letter = DeadLetter.objects.get()
    assert (letter.event_id, letter.partition_key) == (str(first.id), str(task_a.pk))
    assert dead_letter_rows() == []  # no broker to carry it: the record is the dead letter


# --- what the operator sees and does --------------------------------------------------------


@pytest.fixture
def dead(consumer, envelope) -> ConsumerFailure:
    """One dead letter: the recording consumer failed its whole budget on ``envelope``."""
    consumer.fail_with = ValueError("a handler bug")
    deliver("task-events", envelope)
    retry_until_dead()
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
        "Replay (put back in line)",
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


def test_the_replay_command_puts_it_back_in_line_for_the_roles_retry_pass(consumer, dead, envelope):
    calls = consumer.calls

    out = call("replay_dead_letters", str(dead.pk))

    assert f"put back in line #{dead.pk} {CONSUMER}" in out
    assert consumer.calls == calls  # not run by the command
    dead.refresh_from_db()
    assert (dead.state, dead.attempts) == (FailureState.RETRYING, 0)
    assert dead.replayed_at is not None and dead.next_attempt_at <= timezone.now()
    assert "0 put back in line, 1 skipped" in call("replay_dead_letters", str(dead.pk))

    assert retry_consumer_failures() == {"handled": 1}

    assert [e["event_id"] for e in consumer.effects()] == [envelope["id"]]
    dead.refresh_from_db()
    assert dead.state == FailureState.REPLAYED  # kept: the admin's replay history
    assert DeadLetter.objects.get().pk == dead.pk
    assert json.loads(call("events_status", "--json"))["dead_letters"] == 0


def test_a_replayed_event_that_fails_again_gets_a_fresh_budget(consumer, dead):
    call("replay_dead_letters", "--consumer", CONSUMER)
    consumer.fail_with = RetryLater("the mail server is still down")

    passes = retry_until_dead()

    assert passes == 3  # the whole budget again
    dead.refresh_from_db()
    assert (dead.state, dead.attempts) == (FailureState.DEAD, 3)
    assert dead.last_error == "RetryLater: the mail server is still down"
    assert consumer.effects() == []


def test_replay_from_a_process_not_serving_the_role_does_not_run_the_handler(
    settings, consumer, dead
):
    settings.EVENT_CONSUMERS = ["none"]  # the web deployment, which serves the admin
    calls = consumer.calls

    with pytest.raises(CommandError, match=f"served by role '{TEST_CONSUMER}'"):
        call("replay_dead_letters", "--all", "--now")
    assert DeadLetter.objects.get().state == FailureState.DEAD  # nothing changed

    assert "1 put back in line" in call("replay_dead_letters", "--all")
    assert retry_consumer_failures() == {}  # web's retry pass serves no consumer
    assert consumer.calls == calls

    settings.EVENT_CONSUMERS = [TEST_CONSUMER]  # the process serving the role
    assert retry_consumer_failures() == {"handled": 1}
    assert len(consumer.effects()) == 1


def test_replay_now_runs_it_here_when_this_process_serves_the_role(consumer, dead):
    out = call("replay_dead_letters", "--now", str(dead.pk))

    assert f"replayed #{dead.pk}" in out
    assert "1 replayed, 0 failed again, 0 put back in line, 0 skipped" in out
    assert len(consumer.effects()) == 1
    dead.refresh_from_db()
    assert dead.state == FailureState.REPLAYED


def test_replay_now_that_fails_again_exits_non_zero_and_stays_in_line(consumer, dead):
    consumer.fail_with = RetryLater("still down")

    with pytest.raises(CommandError, match="1 dead letter"):
        call("replay_dead_letters", "--now", "--all")

    dead.refresh_from_db()
    assert (dead.state, dead.attempts, dead.last_error) == (
        FailureState.RETRYING,
        1,
        "RetryLater: still down",
    )


def test_the_replay_command_needs_a_choice(dead):
    with pytest.raises(CommandError, match="one of them"):
        call("replay_dead_letters")
    with pytest.raises(CommandError, match="No dead letter with id 999"):
        call("replay_dead_letters", "999")


def test_the_admin_replay_action_puts_it_back_in_line(admin_client, consumer, dead, envelope):
    action = {"action": "replay_selected", "_selected_action": [dead.pk]}
    calls = consumer.calls

    first = admin_client.post("/admin/events/deadletter/", action, follow=True)

    page = first.content.decode()
    assert "1 dead letter(s) put back in line" in page
    assert f"the process serving {TEST_CONSUMER} runs them" in page
    assert consumer.calls == calls  # the web process runs no handler
    assert retry_consumer_failures() == {"handled": 1}
    assert [e["event_id"] for e in consumer.effects()] == [envelope["id"]]

    second = admin_client.post("/admin/events/deadletter/", action, follow=True)

    assert "0 dead letter(s) put back in line" in second.content.decode()
    assert "1 skipped (not dead)" in second.content.decode()
    assert len(consumer.effects()) == 1


def test_prune_removes_handled_replays_after_the_retention_and_keeps_dead_letters(
    settings, consumer, dead, alice
):
    call("replay_dead_letters", str(dead.pk))
    retry_consumer_failures()
    make_task(alice, title="Another poison")
    other = build_envelope(OutboxEvent.objects.filter(topic="task-events").last())
    consumer.fail_with = ValueError("a handler bug")
    deliver("task-events", other)
    retry_until_dead(other["id"])
    later = timezone.now() + dt.timedelta(hours=settings.OUTBOX_RETENTION_HOURS + 1)

    assert prune(now=later).replayed == 1

    assert list(ConsumerFailure.objects.values_list("event_id", "state")) == [
        (other["id"], FailureState.DEAD)
    ]


# --- under concurrency (PostgreSQL) ----------------------------------------------------------


def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency is tested on PostgreSQL (REQUIRE_SERVICES=1 CI)")


@pytest.mark.service("postgres")
@pytest.mark.django_db(transaction=True)
def test_concurrent_retry_passes_run_each_held_event_once(alice, consumer):
    _postgres_only()
    for number in range(5):
        make_task(alice, title=f"Held {number}")
    consumer.fail_with = RetryLater("not now")
    for row in OutboxEvent.objects.filter(topic="task-events"):
        deliver("task-events", build_envelope(row))
    consumer.fail_with = None
    consumer.sleep = 0.05
    later = timezone.now() + dt.timedelta(hours=1)

    results = run_in_threads(4, lambda _: retry_consumer_failures(now=later))

    assert sum(result["handled"] for result in results) == 5
    assert consumer.calls == 5 + 5  # the first deliveries, then one retry each
    assert len({e["event_id"] for e in consumer.effects()}) == len(consumer.effects()) == 5
    assert not ConsumerFailure.objects.exists()


@pytest.mark.service("postgres")
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_count_every_attempt_and_dead_letter_once(alice, caplog):
    _postgres_only()
    make_task(alice)
    event = parse_envelope(build_envelope(OutboxEvent.objects.get(topic="task-events")))
    consumer = Consumer(
        name=CONSUMER, handler=print, event_types=tuple(EventType), role=TEST_CONSUMER
    )
    caplog.set_level(logging.WARNING, logger="events.failures")

    states = run_in_threads(
        8,
        lambda _: record_failure(
            consumer,
            event,
            "task-events",
            ValueError("a handler bug"),
            FailureKind.CRASH,
            publish_dead_letter=True,
        ),
    )

    # Each attempt is counted once, in turn: the first two find attempts left, the third
    # spends the budget, and every later one finds a dead letter.
    assert sorted(states) == [FailureState.DEAD] * 6 + [FailureState.RETRYING] * 2
    letter = ConsumerFailure.objects.get()
    assert (letter.state, letter.attempts) == (FailureState.DEAD, 8)
    transitions = [r for r in caplog.records if r.getMessage().startswith("event dead-lettered")]
    assert len(transitions) == 1 and transitions[0].levelname == "ERROR"
    assert [build_envelope(row)["id"] for row in dead_letter_rows()] == [event.id]


# --- daprd's own retries ------------------------------------------------------------------------


def test_the_sidecars_inbound_retries_are_finite_and_ride_out_a_short_database_outage():
    """dapr/resiliency.yaml's inbound retries now cover only deliveries the app could not even
    record (the database is down): finite, but long enough for a failover."""
    spec = yaml.safe_load((ROOT / "dapr" / "resiliency.yaml").read_text())["spec"]
    inbound = spec["targets"]["components"]["pubsub-kafka"]["inbound"]
    policy = spec["policies"]["retries"][inbound["retry"]]

    assert 0 <= policy["maxRetries"] != -1
    assert policy["policy"] == "constant"
    total = dt.timedelta(seconds=int(policy["duration"].removesuffix("s"))) * policy["maxRetries"]
    assert dt.timedelta(minutes=5) <= total <= dt.timedelta(minutes=30)
