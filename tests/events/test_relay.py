"""The relay, publishing through a stand-in Dapr sidecar over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from collections import defaultdict

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from events import dapr
from events.models import OutboxEvent, OutboxState, ProcessedEvent
from events.relay import backoff, claim_batch, prune, relay_once, relay_pending
from tasks import services
from tests.events.helpers import rows, start_sidecar, wait_until
from tests.factories import make_task
from tests.support.concurrency import run_in_threads
from tests.support.fake_dapr import CLOUDEVENTS_CONTENT_TYPE

BOTH = {"task-events", "task-updates"}
# daprd's answer to an event it cannot marshal: the one kind of 400 that parks a row.
CONTENT_ERROR = {
    "errorCode": "ERR_PUBSUB_EVENTS_SER",
    "message": "error when marshalling cloud event envelope for topic task-events",
}


def make_due_now() -> None:
    """Skip the backoff wait: every pending row may be tried again now."""
    OutboxEvent.objects.filter(state=OutboxState.PENDING).update(next_attempt_at=timezone.now())


def published_ids(sidecar, topic: str | None = None) -> list[str]:
    return [event["id"] for event in sidecar.events(topic)]


# --- the CloudEvent on the wire --------------------------------------------------------


def test_each_row_is_published_as_its_own_cloudevent(alice, fake_dapr, caplog):
    task = make_task(alice, title="Publish me", tags=["x"])
    outbox = rows()
    assert {r.topic for r in outbox} == BOTH

    caplog.set_level("INFO", logger="events")
    stats = relay_pending()

    assert stats.delivered == 2
    assert len(fake_dapr.published) == 2
    by_topic = {p.topic: p for p in fake_dapr.published}
    for row in outbox:
        sent = by_topic[row.topic]
        event = sent.event
        assert sent.pubsub == "pubsub-kafka"
        assert sent.raw_content_type == CLOUDEVENTS_CONTENT_TYPE
        assert event["id"] == str(row.id)
        assert event["specversion"] == "1.0"
        assert event["source"] == "backend"
        assert event["type"] == "com.tideline.task.created.v1"
        assert event["subject"] == str(task.pk)
        assert event["datacontenttype"] == "application/json"
        assert event["data"] == row.data
        assert event["data"]["task_data"]["tags"] == ["x"]
        assert dt.datetime.fromisoformat(event["time"])
        assert sent.query["metadata.partitionKey"] == str(task.pk)
        assert "dapr-api-token" not in sent.headers
        assert f"event_id={row.id} type=task.created topic={row.topic}" in caplog.text

    for row in rows():
        assert row.state == OutboxState.DELIVERED
        assert row.attempts == 1
        assert row.delivered_at is not None
        assert row.last_attempt_at is not None
        assert row.last_duration_ms is not None
        assert row.last_error == ""
        assert row.locked_by == ""


def test_source_is_the_configured_app_id(alice, fake_dapr, settings):
    settings.DAPR_APP_ID = "tideline-web"
    make_task(alice)
    relay_pending()
    assert {e["source"] for e in fake_dapr.events()} == {"tideline-web"}


def test_several_rows_of_a_topic_go_through_the_bulk_api(alice, fake_dapr):
    tasks = [make_task(alice, title=f"t{i}") for i in range(3)]

    relay_pending()

    for topic in BOTH:
        sent = [p for p in fake_dapr.published if p.topic == topic]
        assert [p.event["data"]["task_id"] for p in sent] == [t.pk for t in tasks]
        for item in sent:
            assert item.raw_content_type == CLOUDEVENTS_CONTENT_TYPE
            assert item.query["metadata.partitionKey"] == str(item.event["data"]["task_id"])
            assert item.event["subject"] == str(item.event["data"]["task_id"])
    assert sorted(published_ids(fake_dapr)) == sorted(str(r.id) for r in rows())


def test_the_api_token_is_sent_when_configured(alice, settings):
    sidecar = start_sidecar(settings, api_token="s3cret")
    try:
        make_task(alice)
        assert relay_pending().delivered == 2
        assert {p.headers.get("dapr-api-token") for p in sidecar.published} == {"s3cret"}
    finally:
        sidecar.stop()


def test_a_wrong_api_token_keeps_the_rows_pending_as_a_configuration_error(alice, settings):
    sidecar = start_sidecar(settings, api_token="s3cret")
    settings.DAPR_API_TOKEN = "wrong"
    try:
        make_task(alice)
        stats = relay_pending()
        assert (stats.retried, stats.failed) == (2, 0)
        assert sidecar.published == []
        assert [r.state for r in rows()] == [OutboxState.PENDING] * 2
        assert all(r.last_error.startswith("configuration: ") for r in rows())
        assert all("401" in r.last_error for r in rows())
    finally:
        sidecar.stop()


def test_every_task_event_type_is_published_with_its_type_in_order(alice, fake_dapr):
    task = make_task(alice, recurrence_type="weekly")
    task_id = task.pk
    services.task_update(task=task, data={"title": "renamed"})
    services.task_complete(task=task)
    services.task_reopen(task=task)
    services.task_delete(task=task)

    relay_pending()

    expected = [
        "com.tideline.task.created.v1",
        "com.tideline.task.updated.v1",
        "com.tideline.task.completed.v1",
        "com.tideline.task.updated.v1",
        "com.tideline.task.deleted.v1",
    ]
    for topic in BOTH:
        assert [e["type"] for e in fake_dapr.events(topic)] == expected
        assert {e["subject"] for e in fake_dapr.events(topic)} == {str(task_id)}
    recurrence = fake_dapr.events("task-recurrence")
    assert [e["type"] for e in recurrence] == ["com.tideline.task.completed.v1"]
    assert recurrence[0]["data"]["has_recurrence"] is True


def test_a_later_event_waits_while_an_earlier_one_of_its_task_is_retried(alice, fake_dapr):
    first = make_task(alice, title="first")
    other = make_task(alice, title="other")
    fake_dapr.fail_publishes(1, 503)  # the bulk call for task-events fails

    relay_pending()
    services.task_update(task=first, data={"title": "first, renamed"})
    services.task_update(task=other, data={"title": "other, renamed"})
    relay_pending()

    # task-updates flows; task-events holds both tasks' later events behind their heads.
    assert len(fake_dapr.events("task-updates")) == 4
    assert fake_dapr.events("task-events") == []
    assert len(rows(topic="task-events", state=OutboxState.PENDING)) == 4

    make_due_now()
    relay_pending()
    for task in (first, other):
        sent = [e for e in fake_dapr.events("task-events") if e["subject"] == str(task.pk)]
        assert [e["type"] for e in sent] == [
            "com.tideline.task.created.v1",
            "com.tideline.task.updated.v1",
        ]


def test_a_row_leased_by_another_relay_is_left_alone_until_the_lease_expires(alice, fake_dapr):
    make_task(alice)
    token, claimed = claim_batch()  # a relay that then crashed before publishing
    assert len(claimed) == 2

    assert relay_pending().attempted == 0
    assert fake_dapr.published == []

    OutboxEvent.objects.filter(locked_by=token).update(
        locked_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert relay_pending().delivered == 2
    assert len(fake_dapr.published) == 2
    assert all(r.attempts == 1 and r.locked_by == "" for r in rows())


def test_prune_removes_delivered_rows_after_the_retention(alice, fake_dapr, settings):
    settings.OUTBOX_RETENTION_HOURS = 24
    make_task(alice)
    make_task(alice)
    relay_pending()
    make_task(alice)  # pending
    fake_dapr.fail_publishes(1, 400, CONTENT_ERROR)
    relay_pending()  # one parked (task-events, sent first), one delivered
    old_seq = [r.seq for r in rows(state=OutboxState.DELIVERED)][:4]
    OutboxEvent.objects.filter(seq__in=old_seq).update(
        delivered_at=timezone.now() - dt.timedelta(hours=25)
    )
    ProcessedEvent.objects.create(consumer="c.h", event_id="old")
    ProcessedEvent.objects.filter(event_id="old").update(
        processed_at=timezone.now() - dt.timedelta(hours=25)
    )
    ProcessedEvent.objects.create(consumer="c.h", event_id="new")

    assert prune() == (4, 1, 0)  # outbox rows, consumer records, handled replays

    assert not OutboxEvent.objects.filter(seq__in=old_seq).exists()
    assert OutboxEvent.objects.filter(state=OutboxState.DELIVERED).count() == 1
    assert OutboxEvent.objects.filter(state=OutboxState.FAILED).count() == 1
    assert list(ProcessedEvent.objects.values_list("event_id", flat=True)) == ["new"]


# --- the request never waits on the sidecar --------------------------------------------


def test_with_the_sidecar_stopped_a_write_succeeds_and_its_rows_wait(
    api, alice, fake_dapr, django_capture_on_commit_callbacks
):
    fake_dapr.stop()

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/tasks/", {"title": "Offline"})
    assert response.status_code == 201
    assert time.monotonic() - started < 1.0
    assert [r.state for r in rows()] == [OutboxState.PENDING] * 2
    assert all(r.attempts == 0 for r in rows())

    stats = relay_pending()
    assert stats.retried == 2
    for row in rows():
        assert row.state == OutboxState.PENDING
        assert row.attempts == 1
        assert "unreachable" in row.last_error
        assert row.next_attempt_at > timezone.now()

    fake_dapr.start()
    make_due_now()
    assert relay_pending().delivered == 2
    assert sorted(published_ids(fake_dapr)) == sorted(str(r.id) for r in rows())


def test_the_http_request_does_not_wait_on_a_hanging_sidecar(
    alice, live_server, settings, background_worker, monkeypatch
):
    """POST /api/tasks/ over real HTTP while the relay is stuck on a sidecar that never answers."""
    failures: list[str] = []
    real_request = dapr.request

    def recording_request(*args, **kwargs):
        try:
            return real_request(*args, **kwargs)
        except dapr.DaprError as exc:
            failures.append(str(exc))
            raise

    monkeypatch.setattr(dapr, "request", recording_request)
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)  # accepts connections, never answers
    settings.DAPR_ENABLED = True
    settings.DAPR_HTTP_PORT = hanging.getsockname()[1]
    settings.DAPR_TIMEOUT_SECONDS = 1.0
    _, secret = services.api_token_create(user=alice, name="Relay test")
    try:
        started = time.monotonic()
        response = requests.post(
            f"{live_server.url}/api/tasks/",
            json={"title": "Quick"},
            headers={"Authorization": f"Token {secret}"},
            timeout=10,
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 201, response.text
        assert elapsed < 1.0, f"the request took {elapsed:.2f}s"

        # The worker did try, after the commit and outside the request, and timed out.
        wait_until(lambda: len(failures) >= 2, timeout=8)
        background_worker.stop(timeout=10)
    finally:
        hanging.close()
    assert all("unreachable" in f for f in failures)
    assert {r.state for r in rows()} == {OutboxState.PENDING}
    assert [r.attempts for r in rows()] == [1, 1]
    assert all(r.last_error for r in rows())


def test_done_when_a_task_created_over_http_is_one_cloudevent_within_a_second(
    alice, live_server, settings, background_worker
):
    fake = start_sidecar(settings)
    _, secret = services.api_token_create(user=alice, name="Relay test")
    try:
        started = time.monotonic()
        response = requests.post(
            f"{live_server.url}/api/tasks/",
            json={"title": "Hello"},
            headers={"Authorization": f"Token {secret}"},
            timeout=10,
        )
        assert response.status_code == 201
        events = fake.wait_for_events(1, topic="task-events", timeout=5)
        assert time.monotonic() - started < 2.0  # "within a second", with CI headroom
        background_worker.stop(timeout=10)
    finally:
        fake.stop()
    row = OutboxEvent.objects.get(topic="task-events")
    assert [e["id"] for e in events] == [str(row.id)]
    assert events[0]["data"]["task_id"] == response.json()["id"]
    assert row.state == OutboxState.DELIVERED


# --- sidecar down during 1,000 writes ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sidecar_down_during_1000_writes_loses_nothing_and_keeps_order(
    alice, fake_dapr, settings, caplog
):
    caplog.set_level("WARNING", logger="events")  # 6,000 INFO lines would only slow it down
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 0  # retry as soon as asked: no waiting in tests
    settings.OUTBOX_BATCH_SIZE = 500
    fake_dapr.stop()

    tasks = [make_task(alice, title=f"task {i}") for i in range(50)]
    writes = len(tasks)
    priorities = ["low", "medium", "high", "urgent"]
    round_no = 0
    while writes < 1000:
        round_no += 1
        for index, task in enumerate(tasks):
            if writes == 1000:
                break
            data = {"title": f"task {index} v{round_no}"}
            if round_no % 3 == 0:
                data["priority"] = priorities[round_no % 4]
            services.task_update(task=task, data=data)
            writes += 1
            if writes % 100 == 0:
                stats = relay_once()  # the relay keeps trying while the sidecar is down
                assert stats.delivered == 0 and stats.retried > 0

    assert writes == 1000
    assert OutboxEvent.objects.count() == 2000
    assert not OutboxEvent.objects.exclude(state=OutboxState.PENDING).exists()

    fake_dapr.start()  # back on the same port
    for _ in range(100):
        relay_pending()
        if not OutboxEvent.objects.filter(state=OutboxState.PENDING).exists():
            break
    assert not OutboxEvent.objects.exclude(state=OutboxState.DELIVERED).exists()

    outbox = rows()
    for topic in sorted(BOTH):
        sent = fake_dapr.events(topic)
        ids = [e["id"] for e in sent]
        assert len(ids) == 1000
        assert len(set(ids)) == 1000, "a row was published twice"
        assert set(ids) == {str(r.id) for r in outbox if r.topic == topic}
        expected: dict[str, list[str]] = defaultdict(list)
        for row in outbox:
            if row.topic == topic:
                expected[row.partition_key].append(str(row.id))
        arrived: dict[str, list[str]] = defaultdict(list)
        for item in fake_dapr.published:
            if item.topic == topic:
                arrived[item.query["metadata.partitionKey"]].append(item.event["id"])
        assert arrived == expected, "a task's events arrived out of order"


# --- retries, parking and the admin -------------------------------------------------------


def test_a_500_is_retried_with_backoff_and_delivered_once(alice, fake_dapr):
    make_task(alice)
    events_row = OutboxEvent.objects.get(topic="task-events")
    fake_dapr.fail_publishes(1, 500)  # the first call: the task-events row (lowest seq)

    stats = relay_pending()

    assert (stats.delivered, stats.retried, stats.failed) == (1, 1, 0)
    events_row.refresh_from_db()
    assert events_row.state == OutboxState.PENDING
    assert events_row.attempts == 1
    assert "500" in events_row.last_error
    assert events_row.last_attempt_at is not None
    assert events_row.next_attempt_at > timezone.now()
    assert relay_pending().attempted == 0, "not due before its backoff"
    assert fake_dapr.events("task-events") == []

    make_due_now()
    assert relay_pending().delivered == 1

    events_row.refresh_from_db()
    assert events_row.state == OutboxState.DELIVERED
    assert events_row.attempts == 2
    assert published_ids(fake_dapr, "task-events") == [str(events_row.id)]
    assert len(published_ids(fake_dapr)) == 2


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_transient_statuses_are_retried_not_parked(alice, fake_dapr, status):
    make_task(alice)
    make_task(alice)  # two rows per topic: the bulk path
    fake_dapr.fail_publishes(2, status)

    stats = relay_pending()

    assert stats.failed == 0
    assert stats.retried == 4
    assert {r.state for r in rows()} == {OutboxState.PENDING}
    assert all(str(status) in r.last_error for r in rows())

    make_due_now()
    assert relay_pending().delivered == 4
    assert len(set(published_ids(fake_dapr))) == 4


@pytest.mark.parametrize(
    "status, body, parked",
    [
        (400, CONTENT_ERROR, True),
        (400, None, False),  # a 400 that does not say the event is bad
        (401, None, False),
        (403, None, False),
        (404, None, False),
        (408, None, False),
        (429, None, False),
        (500, None, False),
    ],
)
def test_a_single_publish_is_parked_only_when_daprd_refuses_the_event(
    alice, fake_dapr, status, body, parked
):
    make_task(alice)  # one row per topic: single publishes
    fake_dapr.fail_publishes(1, status, body)

    relay_pending()

    row = OutboxEvent.objects.get(topic="task-events")
    assert row.state == (OutboxState.FAILED if parked else OutboxState.PENDING)
    assert str(status) in row.last_error
    assert row.attempts == 1
    assert OutboxEvent.objects.get(topic="task-updates").state == OutboxState.DELIVERED


def test_backoff_is_exponential_and_capped_at_about_a_minute():
    assert 0.8 <= backoff(1).total_seconds() <= 1.0
    assert 3.2 <= backoff(3).total_seconds() <= 4.0
    assert 48 <= backoff(30).total_seconds() <= 60


def test_a_content_error_parks_the_rows_and_later_events_still_flow(
    alice, fake_dapr, admin_client, django_capture_on_commit_callbacks
):
    first, second = make_task(alice, title="a"), make_task(alice, title="b")
    # task-events goes first: its bulk call, then each of its two events on its own.
    fake_dapr.fail_publishes(3, 400, CONTENT_ERROR)

    stats = relay_pending()

    assert stats.delivered == 2  # task-updates
    assert stats.failed == 2  # task-events, parked at the first attempt
    parked = rows(state=OutboxState.FAILED)
    assert {r.topic for r in parked} == {"task-events"}
    assert all(r.last_error.startswith("rejected: ") for r in parked)
    assert all("400" in r.last_error and r.attempts == 1 for r in parked)

    # Later events still flow: another topic, and the same task after its parked event.
    services.task_update(task=first, data={"title": "a2"})
    services.task_complete(task=second)
    relay_pending()
    assert len(fake_dapr.events("task-updates")) == 4
    later = rows(topic="task-events", state=OutboxState.DELIVERED)
    assert published_ids(fake_dapr, "task-events") == [str(r.id) for r in later]
    assert rows(state=OutboxState.PENDING) == []
    assert len(rows(state=OutboxState.FAILED)) == 2

    # Visible in events_status...
    out = _call("events_status", "--json")
    status = json.loads(out)
    assert status["failed"] == 2
    assert status["pending"] == 0
    text = _call("events_status")
    assert "failed: 2" in text
    assert all(str(r.id) in text for r in rows(state=OutboxState.FAILED))

    # ...and in the admin, filtered by state.
    changelist = reverse("admin:events_outboxevent_changelist")
    response = admin_client.get(changelist, {"state__exact": "failed"})
    assert response.status_code == 200
    failed_seqs = {r.seq for r in rows(state=OutboxState.FAILED)}
    assert {r.seq for r in response.context["cl"].result_list} == failed_seqs
    response = admin_client.get(changelist, {"state__exact": "pending"})
    assert list(response.context["cl"].result_list) == []

    # "Retry now" puts them back in line; they are delivered this time.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            changelist,
            {"action": "retry_selected", "_selected_action": sorted(failed_seqs)},
        )
    assert response.status_code == 302
    assert {r.state for r in rows(seq__in=failed_seqs)} == {OutboxState.PENDING}
    assert relay_pending().delivered == 2

    assert rows(state=OutboxState.FAILED) == []
    assert published_ids(fake_dapr, "task-events") == [str(r.id) for r in later + parked]


def _call(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- two relays at once --------------------------------------------------------------------


@pytest.mark.service("postgres")
@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_never_publish_a_row_twice(alice, fake_dapr):
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency is tested on PostgreSQL (REQUIRE_SERVICES=1 CI)")
    tasks = [make_task(alice, title=f"t{i}") for i in range(40)]
    for task in tasks:
        services.task_update(task=task, data={"title": f"{task.title}!"})
        services.task_complete(task=task)
    total = OutboxEvent.objects.count()
    assert total == 240

    batches = [0] * 4  # batches each relay won

    def relay(index: int) -> None:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2.0:
            stats = relay_once(batch_size=7)
            if stats.attempted:
                idle_since = time.monotonic()
                batches[index] += 1
            elif not OutboxEvent.objects.filter(state=OutboxState.PENDING).exists():
                return
            else:
                time.sleep(0.005)

    run_in_threads(4, relay)

    ids = published_ids(fake_dapr)
    assert len(ids) == total
    assert len(set(ids)) == total, "a row was published twice"
    assert set(ids) == {str(r.id) for r in rows()}
    assert not OutboxEvent.objects.exclude(state=OutboxState.DELIVERED).exists()
    assert all(r.attempts == 1 for r in rows())
    assert sum(1 for n in batches if n) >= 2, "the relays did not actually run side by side"
    # and per task, per topic, in order
    position = {e["id"]: i for i, e in enumerate(fake_dapr.events())}
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows():
        by_key[(row.topic, row.partition_key)].append(position[str(row.id)])
    assert all(p == sorted(p) for p in by_key.values())


def test_a_batch_that_outlives_its_lease_does_not_send_rows_another_relay_took(alice):
    """The lease is renewed as a slow batch goes; a row whose lease ran out and which another
    relay claimed meanwhile is left to that relay, not sent a second time."""
    import time

    from events.relay import Lease, claim_batch

    make_task(alice, title="One")
    make_task(alice, title="Two")
    token, claimed = claim_batch()
    lease = Lease(token, claimed)
    lease.renewed = time.monotonic() - 60  # the batch has been busy for a minute
    stolen = claimed[-1]
    OutboxEvent.objects.filter(seq=stolen.seq).update(
        locked_by="another-relay", locked_until=timezone.now() + dt.timedelta(seconds=30)
    )

    assert [lease.still_mine(row) for row in claimed] == [True] * (len(claimed) - 1) + [False]
    renewed = OutboxEvent.objects.filter(locked_by=token)
    assert all(row.locked_until > timezone.now() + dt.timedelta(seconds=20) for row in renewed)
