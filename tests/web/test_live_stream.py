"""``GET /live/``: a signed-in page's stream of its user's task changes (server-sent events).

These tests read the stream as the browser does, through the WSGI test client (the streams
end after ``LIVE_STREAM_MAX_SECONDS``); the browser journeys (tests/e2e/test_live_updates.py)
follow it under the ASGI servers.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from events import live
from events.models import LiveUpdate
from events.relay import relay_pending
from tasks import services
from tests.factories import make_task


@pytest.fixture(autouse=True)
def short_streams(settings):
    settings.EVENT_CONSUMERS = ["all"]
    settings.LIVE_STREAM_MAX_SECONDS = 0.3
    settings.LIVE_HEARTBEAT_SECONDS = 0.1


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def parse(stream: str) -> list[dict[str, str]]:
    """The stream's events as the browser's parser sees them (comments left out)."""
    events = []
    for block in stream.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields:
            events.append(fields)
    return events


def read(client: Client, path: str = "/live/", **headers) -> list[dict[str, str]]:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    return parse(b"".join(response.streaming_content).decode())


def task_events(events: list[dict[str, str]]) -> list[tuple[str, str, int]]:
    """(id, change type, task id) of each ``task`` event."""
    return [
        (event["id"], json.loads(event["data"])["type"], json.loads(event["data"])["task_id"])
        for event in events
        if event.get("event") == "task"
    ]


def logged_ids(user) -> list[str]:
    return list(
        LiveUpdate.objects.filter(user=user).order_by("seq").values_list("event_id", flat=True)
    )


def page_position(client: Client) -> str:
    """The ``after`` a rendered page gives its stream."""
    body = client.get("/").content.decode()
    return re.search(r'<meta name="tideline-live" content="/live/\?after=([^"]*)">', body)[1]


def test_a_stream_needs_a_signed_in_user_or_an_api_token(db, client):
    response = client.get("/live/")

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Sign in, or send Authorization: Token <API token>, to follow live updates."
    }
    wrong = client.get("/live/", headers={"Authorization": "Token tdl_not-a-token"})
    assert wrong.status_code == 401
    assert wrong.json() == {"detail": "Invalid token: it is wrong, or it was revoked."}


def test_a_script_follows_with_its_api_token(alice, client):
    token = services.api_token_create(user=alice, name="follower")[1]
    make_task(alice, title="For the script")
    relay_pending()

    events = read(client, "/live/?after=start", Authorization=f"Token {token}")

    assert [kind for _, kind, _ in task_events(events)] == ["task.created"]


def test_a_page_stream_sends_the_changes_made_after_the_page_was_rendered(alice, alice_client):
    make_task(alice, title="Already shown")
    relay_pending()
    after = page_position(alice_client)
    assert after == logged_ids(alice)[-1]

    task = make_task(alice, title="Added in another window")
    services.task_complete(task=task)
    relay_pending()

    events = read(alice_client, f"/live/?after={after}")

    assert events[0] == {"retry": "2000"}
    assert task_events(events) == [
        (logged_ids(alice)[1], "task.created", task.pk),
        (logged_ids(alice)[2], "task.completed", task.pk),
    ]


def test_a_user_without_changes_yet_starts_from_the_beginning_of_the_log(alice, alice_client):
    assert page_position(alice_client) == "start"
    make_task(alice, title="First ever")
    relay_pending()

    assert [kind for _, kind, _ in task_events(read(alice_client, "/live/?after=start"))] == [
        "task.created"
    ]


def test_a_reconnect_resumes_after_last_event_id_without_repeating_or_missing(alice, alice_client):
    for title in ("One", "Two", "Three"):
        make_task(alice, title=title)
    relay_pending()
    first, second, third = logged_ids(alice)

    # The browser reconnects with the id of the last event it saw, on the page's old URL.
    events = read(alice_client, f"/live/?after={first}", **{"Last-Event-ID": second})

    assert [event_id for event_id, _, _ in task_events(events)] == [third]


def test_a_stream_from_now_tells_the_browser_where_it_starts(alice, alice_client):
    make_task(alice, title="Before")
    relay_pending()

    events = read(alice_client)

    assert events[1] == {"id": logged_ids(alice)[-1], "event": "position", "data": "{}"}
    assert task_events(events) == []


def test_an_id_the_log_no_longer_holds_resets_the_page(alice, alice_client):
    make_task(alice, title="Pruned away")
    relay_pending()
    gone = logged_ids(alice)[0]
    LiveUpdate.objects.filter(user=alice).delete()

    events = read(alice_client, **{"Last-Event-ID": gone})

    assert events[1] == {"id": gone, "event": "reset", "data": "{}"}
    assert task_events(events) == []


def test_only_the_owners_changes_reach_a_stream(alice, bob, alice_client):
    make_task(bob, title="Bob's secret")
    make_task(alice, title="Alice's own")
    relay_pending()
    bobs_id = logged_ids(bob)[0]

    from_start = read(alice_client, "/live/?after=start")
    # Bob's event id is not a position in Alice's log: a reset, and still nothing of Bob's.
    from_bobs_id = read(alice_client, **{"Last-Event-ID": bobs_id})

    assert [event_id for event_id, _, _ in task_events(from_start)] == logged_ids(alice)
    assert "Bob" not in str(from_start)
    assert from_bobs_id[1]["event"] == "reset"
    assert task_events(from_bobs_id) == []


@pytest.mark.parametrize(
    ("header", "query", "field"),
    [("", "?after=%01", "after"), ("x" * 256, "", "Last-Event-ID")],
)
def test_a_malformed_event_id_is_a_400_naming_where_it_came_from(
    alice_client, header, query, field
):
    headers = {"Last-Event-ID": header} if header else {}

    response = alice_client.get(f"/live/{query}", headers=headers)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_an_idle_stream_sends_keep_alive_comments(alice_client):
    response = alice_client.get("/live/")

    body = b"".join(response.streaming_content).decode()

    assert ": keep-alive\n\n" in body


def test_too_many_open_streams_of_one_user_are_refused_with_429(alice, alice_client, settings):
    settings.LIVE_MAX_STREAMS_PER_USER = 1
    already_open = live.Waiter(alice.pk)
    assert live.hub.open(already_open)
    try:
        response = alice_client.get("/live/")
    finally:
        live.hub.close(already_open)

    assert response.status_code == 429
    assert response["Retry-After"] == "30"
    assert live.hub.open_streams() == 0


def test_a_closed_stream_leaves_the_hub(alice_client):
    read(alice_client)

    assert live.hub.open_streams() == 0


def test_the_list_page_marks_what_a_change_refreshes(alice, alice_client):
    body = alice_client.get("/").content.decode()

    for region in ('id="sidebar"', 'id="task-count"', 'id="task-list-region"'):
        assert re.search(region + r"[^>]*data-live-region", body), region


@pytest.mark.django_db(transaction=True)
def test_an_open_stream_hears_a_change_within_a_second(alice, settings):
    """The whole path in one process: a change commits, the relay hands it to the web role's
    consumer, whose wake-up (PostgreSQL NOTIFY, or in-process on SQLite) reaches the open
    stream, which reads the log and sends it."""
    settings.LIVE_STREAM_MAX_SECONDS = 5
    settings.LIVE_HEARTBEAT_SECONDS = 5  # so only a wake-up can deliver it in time
    client = Client()
    client.force_login(alice)
    received: queue.Queue[tuple[float, str]] = queue.Queue()

    def follow() -> None:
        try:
            response = client.get("/live/")
            for chunk in response.streaming_content:
                received.put((time.monotonic(), chunk.decode()))
            response.close()
        finally:
            connections.close_all()

    follower = threading.Thread(target=follow)
    follower.start()
    assert received.get(timeout=5)[1].startswith("retry:")
    if connections["default"].vendor == "postgresql":
        assert live.hub.listening.wait(5), "the listener did not LISTEN"

    task = make_task(alice, title="Seen at once")
    relay_pending()
    committed_at = time.monotonic()

    arrived_at, chunk = received.get(timeout=2)
    follower.join(10)
    connections.close_all()

    assert task_events(parse(chunk)) == [(logged_ids(alice)[0], "task.created", task.pk)]
    assert arrived_at - committed_at < 1.0


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_change_another_process_recorded_reaches_the_stream(
    alice, settings, monkeypatch
):
    """gunicorn's workers on SQLite: the consumer ran in another process, so no wake-up
    comes from here; the poll of the users' positions finds the change."""
    if connections["default"].vendor != "sqlite":
        pytest.skip("PostgreSQL wakes every process with NOTIFY")
    monkeypatch.setattr(live, "_wake_after_commit", lambda user_id: None)
    settings.LIVE_STREAM_MAX_SECONDS = 5
    settings.LIVE_HEARTBEAT_SECONDS = 5
    settings.LIVE_POLL_SECONDS = 0.2
    client = Client()
    client.force_login(alice)
    received: queue.Queue[str] = queue.Queue()

    def follow() -> None:
        try:
            response = client.get("/live/")
            for chunk in response.streaming_content:
                received.put(chunk.decode())
            response.close()
        finally:
            connections.close_all()

    follower = threading.Thread(target=follow)
    follower.start()
    assert received.get(timeout=5).startswith("retry:")
    assert live.hub.listening.wait(5)

    task = make_task(alice, title="Recorded elsewhere")
    relay_pending()

    chunk = received.get(timeout=1.0)
    follower.join(10)
    connections.close_all()
    assert task_events(parse(chunk)) == [(logged_ids(alice)[0], "task.created", task.pk)]
