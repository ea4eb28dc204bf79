"""Safe retries (issue 11, item 4): a POST sent with an ``Idempotency-Key`` is answered once
per user and key, and every write is answered from inside its own transaction."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from events.models import OutboxEvent
from events.registry import EventType
from events.runtime import SCHEDULE
from tasks import services
from tasks.api import idempotency
from tasks.models import Category, IdempotencyKey, SavedView, Tag, Task
from tests.conftest import _client_for
from tests.support.concurrency import run_in_threads

KEY = "4a1e9b1c-6a53-4d6c-9a43-6f1b1c5f2b10"


def post(client: APIClient, path: str, data: dict | None = None, key: str | None = KEY):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(path, data, format="json", **headers)


def created_events() -> int:
    return OutboxEvent.objects.filter(event_type=EventType.TASK_CREATED).count()


# --- the same request again -------------------------------------------------------------


def test_a_retried_create_gets_the_first_answer_and_creates_nothing_new(api, alice):
    body = {"title": "Pay rent", "tags": ["home", "bills"], "priority": "high"}

    first = post(api, "/api/tasks/", body)
    events = created_events()
    retry = post(api, "/api/tasks/", body)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert first.json()["tags"] == ["bills", "home"]
    assert "Idempotent-Replayed" not in first
    assert retry["Idempotent-Replayed"] == "true"
    assert list(Task.objects.filter(user=alice).values_list("title", flat=True)) == ["Pay rent"]
    assert created_events() == events


def test_without_a_key_each_post_is_a_new_request(api, alice):
    post(api, "/api/tasks/", {"title": "Pay rent"}, key=None)
    post(api, "/api/tasks/", {"title": "Pay rent"}, key=None)

    assert Task.objects.filter(user=alice).count() == 2


@pytest.mark.parametrize(
    ("path", "body", "model"),
    [
        ("/api/tasks/quick-add/", {"text": "Call mum tomorrow 6pm #Family @phone p1"}, Task),
        ("/api/categories/", {"name": "Work", "color": "#336699"}, Category),
        ("/api/tags/", {"name": "errands"}, Tag),
        ("/api/views/", {"name": "Urgent", "filters": {"priority": "urgent"}}, SavedView),
    ],
    ids=["quick-add", "category", "tag", "saved view"],
)
def test_every_create_of_the_api_answers_a_retry_with_the_first_answer(
    api, alice, path, body, model
):
    first = post(api, path, body)
    retry = post(api, path, body)

    assert first.status_code == retry.status_code == 201, first.json()
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert model.objects.filter(user=alice).count() == 1


@pytest.mark.parametrize("action", ["complete", "reopen"])
def test_a_retried_complete_or_reopen_is_answered_as_the_first(api, alice, make_task, action):
    task = make_task(alice, title="Water plants", completed=action == "reopen")
    path = f"/api/tasks/{task.pk}/{action}/"

    first = post(api, path)
    retry = post(api, path)

    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert first.json()["completed"] is (action == "complete")
    assert retry["Idempotent-Replayed"] == "true"


def test_a_quoted_key_is_the_same_key(api, alice):
    post(api, "/api/tasks/", {"title": "Pay rent"}, key="abc")
    retry = post(api, "/api/tasks/", {"title": "Pay rent"}, key='"abc"')

    assert retry["Idempotent-Replayed"] == "true"
    assert Task.objects.filter(user=alice).count() == 1


def test_keys_are_per_user(api, bob_api, alice, bob):
    alices = post(api, "/api/tasks/", {"title": "Pay rent"})
    bobs = post(bob_api, "/api/tasks/", {"title": "Pay rent"})

    assert alices.status_code == bobs.status_code == 201
    assert "Idempotent-Replayed" not in bobs
    assert bobs.json()["id"] != alices.json()["id"]
    assert Task.objects.filter(user=alice).count() == Task.objects.filter(user=bob).count() == 1


# --- the same key for something else ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/tasks/", {"title": "Pay the gas bill"}), ("/api/tags/", {"name": "Pay rent"})],
    ids=["another body", "another path"],
)
def test_a_key_reused_for_another_request_is_a_422_naming_the_header(api, alice, path, body):
    post(api, "/api/tasks/", {"title": "Pay rent"})

    reused = post(api, path, body)

    assert reused.status_code == 422
    assert reused.json() == {
        "detail": "This Idempotency-Key was used for another request (method, path or body): "
        "send a new key for a new request.",
        "code": "idempotency_key_reused",
    }
    assert list(Task.objects.filter(user=alice).values_list("title", flat=True)) == ["Pay rent"]
    assert not Tag.objects.filter(user=alice).exists()


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "café", "line\nbreak", "tab\there"],
    ids=["empty", "256 characters", "not ASCII", "newline", "tab"],
)
def test_a_malformed_key_is_a_400_naming_the_header(api, alice, key):
    response = post(api, "/api/tasks/", {"title": "Pay rent"}, key=key)

    assert response.status_code == 400
    assert response.json() == {"Idempotency-Key": ["Must be 1 to 255 printable ASCII characters."]}
    assert not Task.objects.filter(user=alice).exists()


def test_a_key_of_255_printable_characters_is_accepted(api, alice):
    key = "".join(chr(32 + i % 95) for i in range(255))

    assert post(api, "/api/tasks/", {"title": "Pay rent"}, key=key).status_code == 201
    assert IdempotencyKey.objects.get(user=alice).key == key


def test_a_failed_request_stores_nothing_so_the_corrected_retry_may_use_its_key(api, alice):
    refused = post(api, "/api/tasks/", {"title": "Pay rent", "priority": "extreme"})
    corrected = post(api, "/api/tasks/", {"title": "Pay rent", "priority": "high"})

    assert refused.status_code == 400
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected
    assert not IdempotencyKey.objects.filter(response_status=400).exists()


# --- expiry -----------------------------------------------------------------------------


def test_a_key_older_than_its_ttl_is_new_again(api, alice, settings):
    settings.IDEMPOTENCY_KEY_TTL = dt.timedelta(hours=24)
    first = post(api, "/api/tasks/", {"title": "Pay rent"})
    IdempotencyKey.objects.update(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=24))

    later = post(api, "/api/tasks/", {"title": "Pay rent"})

    assert later.status_code == 201
    assert "Idempotent-Replayed" not in later
    assert later.json()["id"] != first.json()["id"]
    assert Task.objects.filter(user=alice).count() == 2
    assert IdempotencyKey.objects.get().response_body["id"] == later.json()["id"]


def test_the_periodic_purge_deletes_only_expired_keys(api, alice, settings):
    settings.IDEMPOTENCY_KEY_TTL = dt.timedelta(hours=24)
    post(api, "/api/tasks/", {"title": "Old"}, key="old")
    post(api, "/api/tasks/", {"title": "Recent"}, key="recent")
    IdempotencyKey.objects.filter(key="old").update(
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
    )

    assert idempotency.purge_expired() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]
    entry = next(entry for entry in SCHEDULE if entry.name == "purge-idempotency-keys")
    assert entry.target == "tasks.api.idempotency.purge_expired"
    assert not entry.without_dapr and not entry.role_bound


# --- answered from inside the transaction -----------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/tasks/", {"title": "Pay rent", "tags": ["home"]}, 201),
        ("/api/tasks/quick-add/", {"text": "Pay rent tomorrow @home"}, 201),
    ],
    ids=["create", "quick-add"],
)
def test_a_write_whose_connection_is_lost_after_commit_is_still_answered(
    alice, monkeypatch, path, body, status
):
    """The response is read before COMMIT: a connection lost right after it cannot turn
    the committed write into an error, which the client would retry into a duplicate."""
    client = _client_for(alice)
    lost = threading.Event()
    real_commit = connection.commit

    def commit_then_lose_the_connection():
        real_commit()
        lost.set()

    def fail_once_lost(execute, sql, params, many, context):
        if lost.is_set():
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    monkeypatch.setattr(connection, "commit", commit_then_lose_the_connection)
    with connection.execute_wrapper(fail_once_lost):
        response = post(client, path, body, key=None)
    monkeypatch.undo()

    assert lost.is_set()
    assert response.status_code == status, response.content
    assert response.json()["tags"] == ["home"]
    assert list(Task.objects.filter(user=alice).values_list("id", flat=True)) == [
        response.json()["id"]
    ]


def test_a_write_cut_off_midway_is_a_503_that_leaves_nothing_so_its_retry_creates_it(api, alice):
    def lose_the_connection_at_the_insert(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "tasks_task"'):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(lose_the_connection_at_the_insert):
        cut_off = post(api, "/api/tasks/", {"title": "Pay rent", "tags": ["home"]})
    retry = post(api, "/api/tasks/", {"title": "Pay rent", "tags": ["home"]})

    assert cut_off.status_code == 503
    assert cut_off.json()["code"] == "database_unavailable"
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert list(Task.objects.filter(user=alice).values_list("id", flat=True)) == [
        retry.json()["id"]
    ]
    assert Tag.objects.filter(user=alice).count() == 1


# --- concurrent retries (PostgreSQL: real row locks, one connection per thread) -----------

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent retries are checked on PostgreSQL"
)


@needs_postgresql
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_task(alice):
    client = _client_for(alice)
    credentials = client._credentials

    def create(_index: int):
        thread_client = APIClient()
        thread_client.credentials(**credentials)
        response = post(thread_client, "/api/tasks/", {"title": "Pay rent", "tags": ["home"]})
        return response.status_code, response.json(), response.get("Idempotent-Replayed")

    results = run_in_threads(6, create)

    assert {(status, body["id"]) for status, body, _ in results} == {
        (201, Task.objects.get(user=alice).pk)
    }
    assert sorted(replayed or "" for _, _, replayed in results) == ["", *["true"] * 5]


@needs_postgresql
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_first_request_is_in_flight_is_a_409(alice, monkeypatch):
    client = _client_for(alice)
    credentials = client._credentials
    started, release = threading.Event(), threading.Event()
    real_create = services.task_create

    def slow_create(**kwargs):
        task = real_create(**kwargs)
        started.set()
        release.wait(timeout=10)
        return task

    monkeypatch.setattr(services, "task_create", slow_create)
    monkeypatch.setattr(idempotency, "IN_FLIGHT_WAIT_MS", 200)
    first = {}

    def send_first():
        thread_client = APIClient()
        thread_client.credentials(**credentials)
        first["response"] = post(thread_client, "/api/tasks/", {"title": "Pay rent"})
        connection.close()

    thread = threading.Thread(target=send_first)
    thread.start()
    assert started.wait(timeout=10)

    in_flight = post(client, "/api/tasks/", {"title": "Pay rent"})
    release.set()
    thread.join(timeout=10)
    after = post(client, "/api/tasks/", {"title": "Pay rent"})

    assert in_flight.status_code == 409
    assert in_flight.json()["code"] == "idempotency_key_in_flight"
    assert "Idempotency-Key" in in_flight.json()["detail"]
    assert first["response"].status_code == 201
    assert after["Idempotent-Replayed"] == "true"
    assert after.json() == first["response"].json()
    assert Task.objects.filter(user=alice).count() == 1


def test_operators_see_the_keys_in_the_admin_read_only(admin_client, api):
    post(api, "/api/tasks/", {"title": "Pay rent"})
    record = IdempotencyKey.objects.get()

    assert KEY in admin_client.get("/admin/tasks/idempotencykey/").content.decode()
    assert admin_client.get(f"/admin/tasks/idempotencykey/{record.pk}/change/").status_code == 200
    assert admin_client.get("/admin/tasks/idempotencykey/add/").status_code == 403
    assert admin_client.get(f"/admin/tasks/idempotencykey/{record.pk}/delete/").status_code == 403
