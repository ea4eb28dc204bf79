"""Each answer the sidecar gives to a publish, as an operator sees it: rows pending or parked,
``events_status``, ``/readyz`` and the log.

daprd's answers (dapr-protocol-notes.md, dapr/dapr pkg/api/errors/pubsub.go):
- 2xx: delivered.
- 401 (token) and 403 (scopes): a configuration error: retried with backoff, never parked, one
  ERROR line per attempt naming the likely cause, ``/readyz`` 503 until a publish succeeds.
- 404 or 400 for a pub/sub component that is not loaded (yet): retried.
- The event's own content (400 ``ERR_PUBSUB_EVENTS_SER`` / ``ERR_PUBSUB_REQUEST_METADATA``,
  500 ``ERR_PUBSUB_CLOUD_EVENTS_SER``): parked.
- Any other 5xx, a timeout, a refused connection: retried.
- A bulk partial failure (500 with ``failedEntries``): only the failed entries are retried.
"""

from __future__ import annotations

import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from events.models import OutboxEvent, OutboxState
from events.relay import configuration_error, relay_pending
from tests.events.helpers import rows, start_sidecar
from tests.factories import make_task

PENDING, PARKED, DELIVERED = OutboxState.PENDING, OutboxState.FAILED, OutboxState.DELIVERED
READY = {"status": "ok", "database": "ok"}


def make_due_now() -> None:
    """Skip the backoff wait: every pending row may be tried again now."""
    OutboxEvent.objects.filter(state=PENDING).update(next_attempt_at=timezone.now())


def events_status() -> str:
    out = StringIO()
    call_command("events_status", stdout=out)
    return out.getvalue()


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


def daprd_error(code: str, message: str = "refused by the stand-in") -> dict:
    return {"errorCode": code, "message": message}


@pytest.fixture
def log(caplog):
    caplog.set_level("WARNING", logger="events")
    return caplog


# --- 401 / 403: configuration errors ------------------------------------------------------


def test_a_wrong_token_is_retried_at_every_backoff_step_and_never_parked(alice, settings, log):
    sidecar = start_sidecar(settings, api_token="rotated")
    settings.DAPR_API_TOKEN = "before-rotation"
    try:
        make_task(alice)  # one event on task-events, one on task-updates

        for attempt in (1, 2, 3):
            log.clear()
            make_due_now()
            stats = relay_pending()

            assert (stats.delivered, stats.retried, stats.failed) == (0, 2, 0)
            assert [(r.state, r.attempts) for r in rows()] == [(PENDING, attempt)] * 2
            [line] = error_lines(log)  # once per step, for both topics
            assert "DAPR_API_TOKEN" in line
            assert "2 event(s) on task-events, task-updates kept pending" in line
            assert "401" in line
        assert sidecar.published == []
        assert all(r.last_error.startswith("configuration: ") for r in rows())
    finally:
        sidecar.stop()


def test_a_wrong_token_makes_readyz_and_events_status_say_why(alice, settings, client):
    sidecar = start_sidecar(settings, api_token="rotated")
    settings.DAPR_API_TOKEN = "before-rotation"
    try:
        make_task(alice)
        relay_pending()

        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert (body["status"], body["database"]) == ("unavailable", "ok")
        assert "-> 401" in body["sidecar"]
        assert "check DAPR_API_TOKEN" in body["sidecar"]
        text = events_status()
        assert "pending: 2" in text
        assert "failed: 0" in text
        assert "publishing blocked by the sidecar's configuration: configuration: " in text
        assert "check DAPR_API_TOKEN" in text

        settings.DAPR_API_TOKEN = "rotated"  # the app gets the new token
        make_due_now()
        assert relay_pending().delivered == 2

        response = client.get("/readyz")
        assert (response.status_code, response.json()) == (200, READY)
        assert "publishing blocked" not in events_status()
    finally:
        sidecar.stop()


def test_readyz_recovers_on_the_next_successful_publish_while_older_rows_wait(
    alice, settings, client
):
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 60.0  # the older rows wait, however slow the run
    sidecar = start_sidecar(settings, api_token="rotated")
    settings.DAPR_API_TOKEN = "before-rotation"
    try:
        make_task(alice, title="written during the rotation")
        relay_pending()
        assert client.get("/readyz").status_code == 503
        waiting = rows()

        settings.DAPR_API_TOKEN = "rotated"
        make_task(alice, title="written after it")  # another task: due now, not behind them
        assert relay_pending().delivered == 2

        assert [r.state for r in rows(seq__in=[r.seq for r in waiting])] == [PENDING] * 2
        response = client.get("/readyz")
        assert (response.status_code, response.json()) == (200, READY)
    finally:
        sidecar.stop()


def test_a_topic_the_scopes_forbid_is_retried_and_reported_until_it_is_allowed(
    alice, fake_dapr, client, log
):
    make_task(alice)
    make_task(alice)  # two events per topic: the bulk API
    fake_dapr.reject_topic("task-updates", 403)

    stats = relay_pending()

    assert (stats.delivered, stats.retried, stats.failed) == (2, 2, 0)
    assert {r.state for r in rows(topic="task-updates")} == {PENDING}
    [line] = error_lines(log)
    assert "scopes" in line
    assert "2 event(s) on task-updates kept pending" in line
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "-> 403" in response.json()["sidecar"]
    assert "scopes" in response.json()["sidecar"]

    fake_dapr.accept_topic("task-updates")
    make_due_now()
    assert relay_pending().delivered == 2
    assert {r.state for r in rows()} == {DELIVERED}
    assert client.get("/readyz").status_code == 200


# --- several apps, one outbox: each app's sidecar answers for that app only ----------------

WEB, NOTIFICATIONS = "tideline-web", "tideline-notifications"


def test_each_attempt_records_the_app_that_relayed_it(alice, settings):
    make_task(alice, title="relayed in-process")
    relay_pending()  # the embedded default: no sidecar, no app id
    assert {r.last_attempt_by for r in rows()} == {""}

    settings.DAPR_APP_ID = WEB
    sidecar = start_sidecar(settings)
    try:
        make_task(alice, title="relayed through the web app's sidecar")
        relay_pending()
    finally:
        sidecar.stop()
    assert [r.last_attempt_by for r in rows()] == ["", "", WEB, WEB]


def test_one_apps_forbidden_topic_makes_only_that_app_not_ready(alice, settings, client):
    """The deployed topology: web and notifications share the outbox, and each relays it
    through its own sidecar; only web's sidecar scopes forbid task-updates."""
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 60.0  # web's refused row waits until made due
    settings.DAPR_APP_ID = WEB
    web_sidecar = start_sidecar(settings)
    settings.DAPR_APP_ID = NOTIFICATIONS
    notifications_sidecar = start_sidecar(settings)
    as_web = override_settings(DAPR_APP_ID=WEB, DAPR_HTTP_PORT=web_sidecar.port)
    as_notifications = override_settings(
        DAPR_APP_ID=NOTIFICATIONS, DAPR_HTTP_PORT=notifications_sidecar.port
    )
    try:
        web_sidecar.reject_topic("task-updates", 403)
        make_task(alice, title="relayed by web")
        with as_web:
            assert relay_pending().retried == 1
        [blocked] = rows(topic="task-updates")
        assert (blocked.state, blocked.last_attempt_by) == (PENDING, WEB)

        with as_web:
            response = client.get("/readyz")
        assert response.status_code == 503
        assert "-> 403" in response.json()["sidecar"]
        assert "scopes" in response.json()["sidecar"]
        with as_notifications:
            response = client.get("/readyz")
        assert (response.status_code, response.json()) == (200, READY)

        make_task(alice, title="relayed by notifications")  # another task: not behind it
        with as_notifications:
            assert relay_pending().delivered == 2
        with as_web:  # another app's success says nothing about web's sidecar
            assert client.get("/readyz").status_code == 503
        with as_notifications:
            assert client.get("/readyz").status_code == 200

        web_sidecar.accept_topic("task-updates")
        make_due_now()
        with as_web:
            assert relay_pending().delivered == 1
            assert (client.get("/readyz").status_code, client.get("/readyz").json()) == (
                200,
                READY,
            )
    finally:
        web_sidecar.stop()
        notifications_sidecar.stop()
    first, second = rows(topic="task-updates")
    assert [e["id"] for e in web_sidecar.events("task-updates")] == [str(first.id)]
    assert [e["id"] for e in notifications_sidecar.events("task-updates")] == [str(second.id)]


# --- 404 and 400 for a component that is not there (yet) ----------------------------------


def test_an_unknown_pubsub_is_retried_until_the_component_has_loaded(alice, settings, client, log):
    sidecar = start_sidecar(settings, pubsub_names=("a-component-still-loading",))
    try:
        make_task(alice)

        stats = relay_pending()

        assert (stats.delivered, stats.retried, stats.failed) == (0, 2, 0)
        for row in rows():
            assert row.state == PENDING
            assert row.last_error.startswith("transient: ")
            assert "-> 404" in row.last_error
            assert "check DAPR_PUBSUB_NAME" in row.last_error
        assert error_lines(log) == []
        assert client.get("/readyz").status_code == 200  # not the token, not the scopes
        assert "latest retry" in events_status()

        sidecar.pubsub_names = (settings.DAPR_PUBSUB_NAME,)  # the component is loaded now
        make_due_now()
        assert relay_pending().delivered == 2
        assert len(sidecar.published) == 2
    finally:
        sidecar.stop()


# --- the event's content: parked -----------------------------------------------------------


@pytest.mark.parametrize(
    "status, code",
    [
        (400, "ERR_PUBSUB_EVENTS_SER"),
        (400, "ERR_PUBSUB_REQUEST_METADATA"),
        (500, "ERR_PUBSUB_CLOUD_EVENTS_SER"),  # daprd cannot parse the CloudEvent body
    ],
)
def test_an_event_daprd_refuses_for_its_content_is_parked(
    alice, fake_dapr, client, log, status, code
):
    make_task(alice)  # one event per topic: task-events is published first
    fake_dapr.fail_publishes(1, status, daprd_error(code))

    stats = relay_pending()

    assert (stats.delivered, stats.retried, stats.failed) == (1, 0, 1)
    parked = OutboxEvent.objects.get(topic="task-events")
    assert parked.state == PARKED
    assert parked.last_error.startswith(
        f"rejected: POST /v1.0/publish/pubsub-kafka/task-events -> {status}"
    )
    assert [line.split(" event_id=")[0] for line in error_lines(log)] == ["event rejected, parked"]
    text = events_status()
    assert "failed: 1" in text
    assert f"failed {parked.id} task.created task-events: rejected: " in text
    assert client.get("/readyz").status_code == 200


def test_a_bulk_call_refused_for_its_content_is_retried_event_by_event(alice, fake_dapr):
    make_task(alice, title="bad")
    make_task(alice, title="good")
    bad, good = rows(topic="task-events")
    # The bulk call for task-events, then the first of its events sent on its own.
    fake_dapr.fail_publishes(2, 400, daprd_error("ERR_PUBSUB_EVENTS_SER"))

    stats = relay_pending()

    assert (stats.delivered, stats.retried, stats.failed) == (3, 0, 1)
    assert OutboxEvent.objects.get(pk=bad.pk).state == PARKED
    assert OutboxEvent.objects.get(pk=good.pk).state == DELIVERED
    assert [e["id"] for e in fake_dapr.events("task-events")] == [str(good.id)]


# --- everything else: retried ---------------------------------------------------------------


@pytest.mark.parametrize(
    "status, code",
    [
        (400, "ERR_PUBSUB_NOT_CONFIGURED"),  # no pub/sub component loaded (yet)
        (400, "ERR_PUBSUB_NOT_FOUND"),  # the component went away between two checks
        (500, "ERR_PUBSUB_PUBLISH_MESSAGE"),  # the broker failed
        (503, None),
    ],
)
def test_other_answers_are_retried_with_backoff(alice, fake_dapr, client, log, status, code):
    make_task(alice)
    fake_dapr.fail_publishes(1, status, code and daprd_error(code))

    stats = relay_pending()

    assert (stats.delivered, stats.retried, stats.failed) == (1, 1, 0)
    row = OutboxEvent.objects.get(topic="task-events")
    assert row.state == PENDING
    assert row.last_error.startswith("transient: ")
    assert f"-> {status}" in row.last_error
    assert row.next_attempt_at > timezone.now()
    assert error_lines(log) == []
    text = events_status()
    assert "retrying: 1" in text
    assert f"latest retry {row.id} task-events: transient: " in text
    assert client.get("/readyz").status_code == 200

    make_due_now()
    assert relay_pending().delivered == 1
    assert [e["id"] for e in fake_dapr.events("task-events")] == [str(row.id)]


def test_a_sidecar_that_does_not_answer_in_time_is_retried(alice, settings, client):
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)  # accepts connections, never answers
    settings.DAPR_ENABLED = True
    settings.DAPR_HTTP_PORT = hanging.getsockname()[1]
    settings.DAPR_TIMEOUT_SECONDS = 0.3
    try:
        make_task(alice)
        stats = relay_pending()
    finally:
        hanging.close()

    assert (stats.delivered, stats.retried, stats.failed) == (0, 2, 0)
    for row in rows():
        assert row.state == PENDING
        assert row.last_error.startswith("transient: sidecar unreachable: ")
        assert "timed out" in row.last_error
    assert configuration_error() == ""  # a slow sidecar is no configuration error
    ready = client.get("/readyz")  # but the app is not ready while its sidecar is away
    assert ready.status_code == 503
    assert ready.json()["sidecar"].startswith("not ready: sidecar unreachable")


def test_a_sidecar_that_refuses_connections_is_retried(alice, fake_dapr, client):
    fake_dapr.stop()
    make_task(alice)

    stats = relay_pending()

    assert (stats.delivered, stats.retried, stats.failed) == (0, 2, 0)
    assert [r.last_error.startswith("transient: sidecar unreachable: ") for r in rows()] == [
        True,
        True,
    ]
    assert client.get("/readyz").status_code == 503  # not ready while the sidecar is down

    fake_dapr.start()  # back on the same port: ready again, and the events go out
    assert client.get("/readyz").status_code == 200
    make_due_now()
    assert relay_pending().delivered == 2


def test_a_bulk_partial_failure_retries_only_the_failed_entries(alice, fake_dapr):
    make_task(alice, title="refused")
    make_task(alice, title="accepted")
    refused, accepted = rows(topic="task-events")
    fake_dapr.fail_events(str(refused.id))  # 500 listing only that entry in failedEntries

    stats = relay_pending()

    assert (stats.delivered, stats.retried, stats.failed) == (3, 1, 0)
    refused.refresh_from_db()
    accepted.refresh_from_db()
    assert (refused.state, refused.attempts) == (PENDING, 1)
    assert refused.last_error.startswith("transient: bulk entry failed (500)")
    assert (accepted.state, accepted.attempts) == (DELIVERED, 1)
    assert [e["id"] for e in fake_dapr.events("task-events")] == [str(accepted.id)]

    make_due_now()
    assert relay_pending().delivered == 1
    sent = [e["id"] for e in fake_dapr.events("task-events")]
    assert sent == [str(accepted.id), str(refused.id)]  # only the refused one again
