"""Self-tests for the stand-in Dapr sidecar, exercising it over HTTP as an app and daprd would.

Each test pins one daprd behaviour from /work/shared/docs/dapr-protocol-notes.md (or daprd's
source, where the notes are silent). Run with:
.venv/bin/python -m pytest tests/support/test_fake_dapr.py -q
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import require_service
from tests.support.fake_dapr import (
    CLOUDEVENTS_CONTENT_TYPE,
    DROP,
    ERROR,
    RETRY,
    SUCCESS,
    FakeDaprSidecar,
    InMemoryBroker,
    RedisStreamsBroker,
    RetryPolicy,
    interpret_app_response,
    parse_go_duration,
)

PUBSUB = "pubsub-kafka"
STORE = "statestore-postgres"
CE_HEADERS = {"Content-Type": CLOUDEVENTS_CONTENT_TYPE}
NO_APP_ID = "failed getting app id either from the URL path or the header dapr-app-id"
REPO = Path(__file__).resolve().parents[2]

SUBSCRIPTIONS = [
    {
        "pubsubname": PUBSUB,
        "topic": "tasks",
        "routes": {
            "rules": [
                {"match": 'event.type == "task.created"', "path": "/events/created"},
                {"match": "event.type == 'task.deleted'", "path": "/events/deleted"},
            ],
            "default": "/events/other",
        },
        "deadLetterTopic": "tasks-dead",
        "metadata": {},
    },
    {"pubsubname": PUBSUB, "topic": "legacy", "route": "/legacy"},
    {
        "pubsubname": PUBSUB,
        "topic": "rules-only",
        "routes": {"rules": [{"match": 'event.type == "kept"', "path": "/kept"}]},
        "deadLetterTopic": "rules-only-dead",
    },
]


# --------------------------------------------------------------------------- a tiny app


class TinyApp:
    """A minimal app on loopback: serves /dapr/subscribe and records every request."""

    def __init__(self, subscriptions: list[dict]) -> None:
        self.subscriptions = subscriptions
        self.requests: list[dict[str, Any]] = []
        self._answers: dict[str, list[tuple[int, bytes]]] = {}
        self._lock = threading.Lock()
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = app._record(self.command, self.path, self.headers, body)
                self.send_response(status)
                if status != 204:
                    self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if status != 204:
                    self.wfile.write(answer)

            do_GET = do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def answer(self, path: str, *answers: tuple[int, bytes]) -> None:
        """Answer ``path`` with these (status, body) in turn; the last one sticks."""
        with self._lock:
            self._answers[path] = list(answers)

    def _record(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "headers": {k.lower(): v for k, v in headers.items()},
                    "body": body,
                    "at": time.time(),
                }
            )
            queue = self._answers.get(path)
            if path == "/dapr/subscribe" and not queue:
                return 200, json.dumps(self.subscriptions).encode()
            if not queue:
                return 200, b'{"status": "SUCCESS"}'
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def calls(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    def delivered_ids(self, path: str) -> list[str]:
        return [json.loads(c["body"])["id"] for c in self.calls(path)]

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def app() -> Iterator[TinyApp]:
    tiny = TinyApp(SUBSCRIPTIONS)
    yield tiny
    tiny.close()


@pytest.fixture
def dapr() -> Iterator[FakeDaprSidecar]:
    with FakeDaprSidecar() as sidecar:
        yield sidecar
    assert sidecar.errors == []


def publish(
    sidecar: FakeDaprSidecar, topic: str, body: Any, *, ce: bool = False, **kwargs: Any
) -> requests.Response:
    headers = dict(CE_HEADERS) if ce else {"Content-Type": "application/json"}
    headers.update(kwargs.pop("headers", {}))
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(
        f"{sidecar.url}/v1.0/publish/{PUBSUB}/{topic}",
        data=data,
        headers=headers,
        timeout=5,
        **kwargs,
    )


def cloud_event(event_id: str, type_: str = "task.created", **data: Any) -> dict:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "tideline",
        "type": type_,
        "datacontenttype": "application/json",
        "data": data or {"taskId": 1},
    }


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# --------------------------------------------------------------------------- publishing


def test_app_made_cloudevent_keeps_its_id(dapr: FakeDaprSidecar) -> None:
    ce = cloud_event("0b7c1c9e-outbox-row")
    ce["topic"], ce["pubsubname"] = "wrong", "wrong"
    resp = publish(dapr, "tasks", ce, ce=True, params={"metadata.partitionKey": "42"})
    assert resp.status_code == 204 and resp.content == b""

    resp = publish(dapr, "tasks", ce, ce=True, params={"metadata.partitionKey": "42"})
    assert resp.status_code == 204
    first, second = dapr.events("tasks")
    assert first["id"] == second["id"] == "0b7c1c9e-outbox-row"
    assert first["topic"] == "tasks" and first["pubsubname"] == PUBSUB
    assert first["time"] and first["traceparent"].startswith("00-")
    assert first["traceid"] == first["traceparent"]
    assert first["data"] == ce["data"]
    record = dapr.published[0]
    assert record.query == {"metadata.partitionKey": "42"}
    assert record.key == "42"
    assert record.raw_content_type == CLOUDEVENTS_CONTENT_TYPE
    assert record.headers["Content-Type"] == CLOUDEVENTS_CONTENT_TYPE
    assert dapr.events("other") == []


def test_a_cloudevent_with_a_traceid_keeps_its_trace_fields(dapr: FakeDaprSidecar) -> None:
    ce = dict(cloud_event("e-1"), traceid="00-mine-01")
    assert publish(dapr, "tasks", ce, ce=True).status_code == 204
    [event] = dapr.events("tasks")
    assert event["traceid"] == "00-mine-01"
    assert "traceparent" not in event  # daprd adds both only when traceid is absent


def test_missing_cloudevent_attributes_get_daprs_defaults(dapr: FakeDaprSidecar) -> None:
    assert publish(dapr, "tasks", {"id": "bare", "data": {}}, ce=True).status_code == 204
    [event] = dapr.events("tasks")
    assert (event["source"], event["type"], event["specversion"]) == (
        "Dapr",
        "com.dapr.event.sent",
        "1.0",
    )


def test_plain_json_is_wrapped_with_a_new_id_each_time(dapr: FakeDaprSidecar) -> None:
    body = {"taskId": 7, "title": "write tests"}
    assert publish(dapr, "tasks", body).status_code == 204
    assert publish(dapr, "tasks", body).status_code == 204
    first, second = dapr.wait_for_events(2, topic="tasks")
    assert first["id"] != second["id"]
    for event in (first, second):
        assert event["data"] == body
        assert event["source"] == "backend"  # daprd: the app id
        assert event["type"] == "com.dapr.event.sent"
        assert event["specversion"] == "1.0"
        assert event["datacontenttype"] == "application/json"
        assert event["topic"] == "tasks" and event["pubsubname"] == PUBSUB


def test_plain_json_that_does_not_parse_is_kept_as_a_string(dapr: FakeDaprSidecar) -> None:
    assert publish(dapr, "tasks", b"{not json").status_code == 204
    [event] = dapr.events("tasks")
    assert event["data"] == "{not json"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"a string"'])
def test_a_cloudevent_that_cannot_be_parsed_is_a_500(dapr: FakeDaprSidecar, body) -> None:
    resp = publish(dapr, "tasks", body, ce=True)

    assert resp.status_code == 500
    assert resp.json()["errorCode"] == "ERR_PUBSUB_CLOUD_EVENTS_SER"
    assert dapr.published == []


def test_an_unknown_pubsub_is_a_404(dapr: FakeDaprSidecar) -> None:
    resp = requests.post(f"{dapr.url}/v1.0/publish/nope/tasks", json={"a": 1}, timeout=5)
    assert resp.status_code == 404
    assert resp.json()["errorCode"] == "ERR_PUBSUB_NOT_FOUND"
    with pytest.raises(AssertionError):
        dapr.wait_for_events(1, timeout=0.05)


def test_api_token_is_enforced() -> None:
    with FakeDaprSidecar(api_token="s3cret") as dapr:
        resp = publish(dapr, "tasks", {"a": 1})
        assert resp.status_code == 401
        assert resp.json() == {"errorCode": "ERR_API_TOKEN", "message": "invalid api token"}
        assert publish(dapr, "tasks", {"a": 1}, headers={"dapr-api-token": "x"}).status_code == 401
        assert requests.get(f"{dapr.url}/v1.0/state/{STORE}/k", timeout=5).status_code == 401
        assert requests.get(f"{dapr.url}/v1.0/metadata", timeout=5).status_code == 401
        assert dapr.published == []

        ok = publish(dapr, "tasks", {"a": 1}, headers={"dapr-api-token": "s3cret"})
        assert ok.status_code == 204
        meta = requests.get(
            f"{dapr.url}/v1.0/metadata", headers={"dapr-api-token": "s3cret"}, timeout=5
        )
        assert meta.status_code == 200 and meta.json()["id"] == "backend"
        # The outbound health check needs no token.
        health = requests.get(f"{dapr.url}/v1.0/healthz/outbound", timeout=5)
        assert health.status_code == 204


def test_fail_publishes_then_success(dapr: FakeDaprSidecar) -> None:
    dapr.fail_publishes(2)
    for _ in range(2):
        resp = publish(dapr, "tasks", cloud_event("e-1"), ce=True)
        assert resp.status_code == 500
        assert resp.json()["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
        assert resp.json()["message"]
    assert dapr.published == []
    assert publish(dapr, "tasks", cloud_event("e-1"), ce=True).status_code == 204
    assert [e["id"] for e in dapr.events()] == ["e-1"]

    dapr.fail_publishes(1, status=503, body={"errorCode": "X", "message": "down"})
    resp = publish(dapr, "tasks", {"a": 1})
    assert resp.status_code == 503 and resp.json() == {"errorCode": "X", "message": "down"}
    assert len(dapr.events()) == 1


def test_fail_events_refuses_one_event_by_id(dapr: FakeDaprSidecar) -> None:
    dapr.fail_events("e-1")
    assert publish(dapr, "tasks", cloud_event("e-2"), ce=True).status_code == 204
    assert publish(dapr, "tasks", cloud_event("e-1"), ce=True).status_code == 500
    assert publish(dapr, "tasks", cloud_event("e-1"), ce=True).status_code == 204
    assert [e["id"] for e in dapr.events()] == ["e-2", "e-1"]


def test_reject_topic_is_permanent(dapr: FakeDaprSidecar) -> None:
    dapr.reject_topic("forbidden", status=403)
    for _ in range(3):
        resp = publish(dapr, "forbidden", {"a": 1})
        assert resp.status_code == 403
        assert resp.json()["errorCode"] == "ERR_PUBSUB_FORBIDDEN"
    assert publish(dapr, "tasks", {"a": 1}).status_code == 204
    dapr.reject_topic("bad")
    assert publish(dapr, "bad", {"a": 1}).status_code == 400
    assert [p.topic for p in dapr.published] == ["tasks"]
    dapr.accept_topic("forbidden")
    assert publish(dapr, "forbidden", {"a": 1}).status_code == 204


def test_stop_and_start_rebinds_the_same_port() -> None:
    dapr = FakeDaprSidecar().start()
    try:
        port, url = dapr.port, dapr.url
        assert port > 0
        assert publish(dapr, "tasks", {"n": 1}).status_code == 204
        dapr.stop()
        with pytest.raises(requests.ConnectionError):
            publish(dapr, "tasks", {"n": 2})
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/v1.0/healthz/outbound", timeout=2)
        dapr.start()
        assert dapr.port == port and dapr.url == url
        assert requests.get(f"{url}/v1.0/healthz/outbound", timeout=2).status_code == 204
        assert publish(dapr, "tasks", {"n": 3}).status_code == 204
        assert [e["data"]["n"] for e in dapr.events("tasks")] == [1, 3]
    finally:
        dapr.stop()


BULK_ENTRIES = [
    {
        "entryId": "1",
        "event": cloud_event("ce-1"),
        "contentType": CLOUDEVENTS_CONTENT_TYPE,
        "metadata": {"partitionKey": "t-1"},
    },
    {"entryId": "2", "event": {"plain": True}, "contentType": "application/json"},
]


def bulk(dapr: FakeDaprSidecar, entries: list[dict], prefix: str = "v1.0-alpha1"):
    url = f"{dapr.url}/{prefix}/publish/bulk/{PUBSUB}/tasks"
    return requests.post(url, json=entries, timeout=5)


def test_bulk_publish(dapr: FakeDaprSidecar) -> None:
    assert bulk(dapr, BULK_ENTRIES).status_code == 204

    first, second = dapr.events("tasks")
    assert first["id"] == "ce-1" and first["topic"] == "tasks"
    assert second["data"] == {"plain": True} and second["id"] != "2"
    assert dapr.published[0].query == {"metadata.partitionKey": "t-1"}


def test_a_bulk_partial_failure_lists_only_the_failed_entries(dapr: FakeDaprSidecar) -> None:
    dapr.fail_events("ce-1")

    resp = bulk(dapr, BULK_ENTRIES)

    assert resp.status_code == 500
    body = resp.json()
    assert body["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
    assert [f["entryId"] for f in body["failedEntries"]] == ["1"]
    assert body["failedEntries"][0]["error"]
    assert "message" not in body
    assert [e["data"] for e in dapr.events("tasks")] == [{"plain": True}]  # the other went


def test_a_failed_bulk_call_lists_every_entry(dapr: FakeDaprSidecar) -> None:
    dapr.fail_publishes(1)
    resp = bulk(dapr, BULK_ENTRIES)
    assert resp.status_code == 500
    assert [f["entryId"] for f in resp.json()["failedEntries"]] == ["1", "2"]

    dapr.reject_topic("tasks", 403)  # scopes: a plain error, no failedEntries
    resp = bulk(dapr, BULK_ENTRIES)
    assert resp.status_code == 403 and resp.json()["errorCode"] == "ERR_PUBSUB_FORBIDDEN"
    assert dapr.events() == []


@pytest.mark.parametrize(
    ("entries", "status", "code"),
    [
        ([dict(BULK_ENTRIES[1]), dict(BULK_ENTRIES[1])], 400, "ERR_PUBSUB_EVENTS_SER"),
        ([{"entryId": "1", "event": {"a": 1}}], 400, "ERR_PUBSUB_EVENTS_SER"),  # no contentType
        (
            [{"entryId": "1", "event": "x", "contentType": CLOUDEVENTS_CONTENT_TYPE}],
            500,
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
        ),
    ],
    ids=["duplicate-entry-id", "no-content-type", "unparsable-cloudevent"],
)
def test_a_bad_bulk_request_publishes_nothing(dapr, entries, status, code) -> None:
    resp = bulk(dapr, entries)
    assert (resp.status_code, resp.json()["errorCode"]) == (status, code)
    assert dapr.events() == []


@pytest.mark.parametrize(("version", "stable_bulk"), [("1.16", False), ("1.17", True)])
def test_the_stable_bulk_path_exists_from_1_17(version, stable_bulk) -> None:
    with FakeDaprSidecar(runtime_version=version) as dapr:
        resp = bulk(dapr, BULK_ENTRIES, prefix="v1.0")
        assert resp.status_code == (204 if stable_bulk else 404)
        assert bulk(dapr, BULK_ENTRIES).status_code == 204  # alpha1 on every version


# --------------------------------------------------------------------------- runtime versions


def job_url(dapr: FakeDaprSidecar, name: str, prefix: str = "v1.0") -> str:
    return f"{dapr.url}/{prefix}/jobs/{name}"


@pytest.mark.parametrize("version", ["1.14", "1.15", "1.16", "1.17"])
def test_before_1_18_the_stable_jobs_path_falls_through_to_service_invocation(version) -> None:
    with FakeDaprSidecar(runtime_version=version) as dapr:
        job = {"dueTime": "10s", "data": {}}
        resp = requests.post(job_url(dapr, "j"), json=job, timeout=5)
        assert resp.status_code == 404
        assert resp.json() == {"errorCode": "ERR_DIRECT_INVOKE", "message": NO_APP_ID}
        assert dapr.jobs == {}

        alpha = requests.post(job_url(dapr, "j", "v1.0-alpha1"), json=job, timeout=5)
        assert alpha.status_code == 204
        assert requests.delete(job_url(dapr, "j"), timeout=5).status_code == 404
        assert "j" in dapr.jobs


def test_1_18_serves_the_stable_jobs_path_and_keeps_the_deprecated_alpha_one() -> None:
    # daprd 1.18 pkg/api/http/jobs.go registers both ("Alpha endpoints (deprecated)").
    with FakeDaprSidecar(runtime_version="1.18") as dapr:
        job = {"dueTime": "10s", "data": {"n": 1}}
        assert requests.post(job_url(dapr, "j"), json=job, timeout=5).status_code == 204
        alpha = requests.get(job_url(dapr, "j", "v1.0-alpha1"), timeout=5)
        assert alpha.status_code == 200 and alpha.json()["data"] == {"n": 1}


@pytest.mark.parametrize("version", ["1.16", "1.18", "1.17.3"])
def test_metadata_reports_the_claimed_runtime_version(version) -> None:
    with FakeDaprSidecar(runtime_version=version) as dapr:
        meta = requests.get(f"{dapr.url}/v1.0/metadata", timeout=5).json()
    expected = version if version.count(".") == 2 else f"{version}.0"
    assert meta["runtimeVersion"] == expected
    assert meta["extended"]["daprRuntimeVersion"] == expected


def test_an_unsupported_runtime_version_is_refused() -> None:
    with pytest.raises(ValueError, match=r"1\.14"):
        FakeDaprSidecar(runtime_version="1.13")


def test_an_unknown_path_or_method_falls_through_to_service_invocation(dapr) -> None:
    for method, path in [
        ("GET", "/v1.0/nothing-here"),
        ("PUT", "/v1.0/metadata"),
        ("GET", f"/v1.0/state/{STORE}"),
    ]:
        resp = requests.request(method, f"{dapr.url}{path}", timeout=5)
        assert resp.status_code == 404, (method, path)
        assert resp.json()["errorCode"] == "ERR_DIRECT_INVOKE"


def test_the_version_can_be_changed_while_running(dapr: FakeDaprSidecar) -> None:
    job = {"dueTime": "10s", "data": {}}
    assert requests.post(job_url(dapr, "j"), json=job, timeout=5).status_code == 404
    dapr.runtime_version = "1.18"
    assert requests.post(job_url(dapr, "j"), json=job, timeout=5).status_code == 204


# --------------------------------------------------------------------------- state


def save(dapr: FakeDaprSidecar, items: list[dict], store: str = STORE) -> requests.Response:
    return requests.post(f"{dapr.url}/v1.0/state/{store}", json=items, timeout=5)


def get(dapr: FakeDaprSidecar, key: str) -> requests.Response:
    return requests.get(f"{dapr.url}/v1.0/state/{STORE}/{key}", timeout=5)


def transact(dapr: FakeDaprSidecar, *operations: dict) -> requests.Response:
    url = f"{dapr.url}/v1.0/state/{STORE}/transaction"
    return requests.post(url, json={"operations": list(operations)}, timeout=5)


def test_keys_are_stored_under_the_app_id() -> None:
    with FakeDaprSidecar(app_id="notifications") as dapr:
        assert save(dapr, [{"key": "poll:last", "value": 1}]).status_code == 204
        assert dapr.stored_keys(STORE) == ["notifications||poll:last"]
        assert dapr.state(STORE) == {"poll:last": 1}
        assert get(dapr, "poll:last").json() == 1


def test_a_key_with_the_separator_is_refused(dapr: FakeDaprSidecar) -> None:
    resp = save(dapr, [{"key": "a||b", "value": 1}])
    assert (resp.status_code, resp.json()["errorCode"]) == (400, "ERR_MALFORMED_REQUEST")
    assert get(dapr, "a||b").status_code == 400


def test_etags_are_uuids_and_change_on_every_save(dapr: FakeDaprSidecar) -> None:
    assert save(dapr, [{"key": "task-1", "value": {"title": "a"}}]).status_code == 204
    first = get(dapr, "task-1").headers["ETag"]
    assert save(dapr, [{"key": "task-1", "value": {"title": "b"}}]).status_code == 204
    second = get(dapr, "task-1").headers["ETag"]

    assert str(uuid.UUID(first)) == first and str(uuid.UUID(second)) == second
    assert first != second


def test_state_save_get_and_etags(dapr: FakeDaprSidecar) -> None:
    assert get(dapr, "missing").status_code == 204

    assert save(dapr, [{"key": "task-1", "value": {"title": "a"}}]).status_code == 204
    resp = get(dapr, "task-1")
    assert resp.status_code == 200 and resp.json() == {"title": "a"}
    etag = resp.headers["ETag"]

    stale = save(dapr, [{"key": "task-1", "value": {"title": "b"}, "etag": str(uuid.uuid4())}])
    assert stale.status_code == 409
    assert stale.json()["errorCode"] == "ERR_STATE_SAVE"
    assert get(dapr, "task-1").json() == {"title": "a"}

    ok = save(dapr, [{"key": "task-1", "value": {"title": "b"}, "etag": etag}])
    assert ok.status_code == 204
    assert get(dapr, "task-1").json() == {"title": "b"}
    # The old etag no longer matches; nor does one that is not a UUID, nor one for no key.
    assert save(dapr, [{"key": "task-1", "value": 1, "etag": etag}]).status_code == 409
    assert save(dapr, [{"key": "task-1", "value": 1, "etag": "1"}]).status_code == 409
    assert save(dapr, [{"key": "nope", "value": 1, "etag": etag}]).status_code == 409
    assert dapr.state(STORE) == {"task-1": {"title": "b"}}

    unknown = save(dapr, [{"key": "k", "value": 1}], store="nope")
    assert unknown.status_code == 400
    assert unknown.json()["errorCode"] == "ERR_STATE_STORE_NOT_FOUND"


def test_first_write_without_etag_on_an_existing_key_is_a_500(dapr: FakeDaprSidecar) -> None:
    first = {"key": "lock", "value": "me", "options": {"concurrency": "first-write"}}
    assert save(dapr, [first]).status_code == 204
    again = save(dapr, [dict(first, value="you")])
    # PostgreSQL v2: the upsert's WHERE updates no row -> "no item was updated", 500.
    assert again.status_code == 500
    assert again.json()["errorCode"] == "ERR_STATE_SAVE"
    assert get(dapr, "lock").json() == "me"
    etag = get(dapr, "lock").headers["ETag"]
    with_etag = save(dapr, [dict(first, value="you", etag=etag)])
    assert with_etag.status_code == 204
    assert get(dapr, "lock").json() == "you"


def test_state_ttl_expiry(dapr: FakeDaprSidecar) -> None:
    items = [
        {"key": "short", "value": 1, "metadata": {"ttlInSeconds": "60"}},
        {"key": "short-int", "value": 2, "metadata": {"ttlInSeconds": 60}},
        {"key": "forever", "value": 3, "metadata": {"ttlInSeconds": "-1"}},
    ]
    assert save(dapr, items).status_code == 204
    assert get(dapr, "short").status_code == 200
    dapr.advance_clock(61)
    assert get(dapr, "short").status_code == 204
    assert get(dapr, "short-int").status_code == 204
    assert get(dapr, "forever").json() == 3
    assert dapr.state(STORE) == {"forever": 3}
    # An expired key counts as missing for first-write.
    first = {"key": "short", "value": 9, "options": {"concurrency": "first-write"}}
    assert save(dapr, [first]).status_code == 204


def test_state_delete_with_if_match(dapr: FakeDaprSidecar) -> None:
    assert save(dapr, [{"key": "k", "value": "v"}]).status_code == 204
    etag = get(dapr, "k").headers["ETag"]
    url = f"{dapr.url}/v1.0/state/{STORE}/k"
    bad = requests.delete(url, headers={"If-Match": str(uuid.uuid4())}, timeout=5)
    assert bad.status_code == 409 and bad.json()["errorCode"] == "ERR_STATE_DELETE"
    assert get(dapr, "k").status_code == 200
    assert requests.delete(url, headers={"If-Match": etag}, timeout=5).status_code == 204
    assert get(dapr, "k").status_code == 204
    assert requests.delete(url, timeout=5).status_code == 204  # deleting nothing is fine


def test_state_transaction_is_all_or_nothing(dapr: FakeDaprSidecar) -> None:
    assert save(dapr, [{"key": "a", "value": 1}, {"key": "b", "value": 2}]).status_code == 204
    etag_b = get(dapr, "b").headers["ETag"]
    good = [
        {"operation": "upsert", "request": {"key": "a", "value": 10}},
        {"operation": "upsert", "request": {"key": "c", "value": 30}},
        {"operation": "delete", "request": {"key": "b", "etag": etag_b}},
    ]
    assert transact(dapr, *good).status_code == 204
    assert dapr.state(STORE) == {"a": 10, "c": 30}


@pytest.mark.parametrize(
    "failing",
    [
        {"operation": "delete", "request": {"key": "b", "etag": str(uuid.uuid4())}},
        {"operation": "upsert", "request": {"key": "b", "value": 3, "etag": str(uuid.uuid4())}},
        {
            "operation": "upsert",
            "request": {"key": "b", "value": 3, "options": {"concurrency": "first-write"}},
        },
    ],
    ids=["delete-etag-mismatch", "upsert-etag-mismatch", "first-write-clash"],
)
def test_every_transaction_error_is_a_500(dapr: FakeDaprSidecar, failing: dict) -> None:
    assert save(dapr, [{"key": "a", "value": 1}, {"key": "b", "value": 2}]).status_code == 204

    resp = transact(dapr, {"operation": "upsert", "request": {"key": "a", "value": 10}}, failing)

    assert resp.status_code == 500  # never 409 from a transaction
    assert resp.json()["errorCode"] == "ERR_STATE_TRANSACTION"
    assert dapr.state(STORE) == {"a": 1, "b": 2}


def test_an_unsupported_transaction_operation_is_a_400(dapr: FakeDaprSidecar) -> None:
    resp = transact(dapr, {"operation": "merge", "request": {"key": "a"}})
    assert resp.status_code == 400
    assert resp.json()["errorCode"] == "ERR_NOT_SUPPORTED_STATE_OPERATION"


# --------------------------------------------------------------------------- jobs (API)


@pytest.fixture
def dapr18() -> Iterator[FakeDaprSidecar]:
    with FakeDaprSidecar(runtime_version="1.18") as sidecar:
        yield sidecar
    assert sidecar.errors == []


def test_jobs_api(dapr18: FakeDaprSidecar) -> None:
    url = job_url(dapr18, "check-due")
    job = {"schedule": "@every 5m", "data": {"kind": "check-due"}}
    assert requests.post(url, json=job, timeout=5).status_code == 204
    dup = requests.post(url, json=job, timeout=5)
    assert dup.status_code == 409  # from 1.16, an existing name needs "overwrite": true
    changed = dict(job, schedule="@every 1m", overwrite=True)
    assert requests.post(url, json=changed, timeout=5).status_code == 204

    got = requests.get(url, timeout=5)
    assert got.status_code == 200
    assert got.json() == {"name": "check-due", "schedule": "@every 1m", "data": job["data"]}

    assert requests.get(job_url(dapr18, "missing"), timeout=5).status_code == 500
    assert requests.delete(url, timeout=5).status_code == 204
    assert requests.get(url, timeout=5).status_code == 500
    assert dapr18.jobs == {}
    assert [(op, name) for op, name, _ in dapr18.job_log] == [
        ("schedule", "check-due"),
        ("schedule", "check-due"),
        ("delete", "check-due"),
    ]
    assert dapr18.job_log[1][2] == changed


def test_before_1_16_an_existing_job_is_replaced_without_overwrite() -> None:
    with FakeDaprSidecar(runtime_version="1.15") as dapr:
        url = job_url(dapr, "j", "v1.0-alpha1")
        assert requests.post(url, json={"dueTime": "1h", "data": {"n": 1}}, timeout=5).ok
        assert requests.post(url, json={"dueTime": "1h", "data": {"n": 2}}, timeout=5).ok
        assert dapr.jobs["j"]["data"] == {"n": 2}


@pytest.mark.parametrize("name", ["a%2Fb", "a%5Cb", "a%23b", "a%3Fb", "a%0Ab", "a%00b", "a%7Cb"])
def test_a_job_name_with_a_forbidden_character_is_a_400(dapr18, name) -> None:
    resp = requests.post(job_url(dapr18, name), json={"dueTime": "1s", "data": {}}, timeout=5)
    assert resp.status_code == 400


@pytest.mark.parametrize(
    "job",
    [
        {"data": {}},
        {"dueTime": "tomorrow", "data": {}},
        {"dueTime": "2030-01-01", "data": {}},  # RFC 3339 needs a time and an offset
        {"schedule": "every minute", "data": {}},
        {"schedule": "*/5 * * * *", "data": {}},  # 5 fields: daprd's cron has seconds first
        {"dueTime": "10s", "repeats": 3, "data": {}},  # repeats need a schedule
        {"schedule": "@every 1m", "repeats": 0, "data": {}},
        {"dueTime": "10s", "ttl": "1h", "data": {}},  # a ttl needs a schedule
    ],
    ids=[
        "neither",
        "bad-due-time",
        "date-only",
        "bad-schedule",
        "five-fields",
        "repeats-one-shot",
        "zero-repeats",
        "ttl-one-shot",
    ],
)
def test_an_invalid_job_is_refused(dapr18: FakeDaprSidecar, job: dict) -> None:
    resp = requests.post(job_url(dapr18, "j"), json=job, timeout=5)
    assert resp.status_code == 400, resp.text
    assert dapr18.jobs == {}


def test_a_ttl_that_ends_before_the_due_time_is_refused(dapr18: FakeDaprSidecar) -> None:
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    job = {"schedule": "@every 1m", "dueTime": "2h", "ttl": in_an_hour, "data": {}}

    resp = requests.post(job_url(dapr18, "j"), json=job, timeout=5)

    assert resp.status_code == 400 and "ttl must be greater than due time" in resp.text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("1h30m", 5400), ("1.5h", 5400), ("-2m", -120), ("500ms", 0.5), ("0", 0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1d", "m", "1h 30m"])
def test_not_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


# --------------------------------------------------------------------------- jobs (triggers)


def schedule_job(dapr: FakeDaprSidecar, name: str, **job: Any) -> None:
    resp = requests.post(job_url(dapr, name), json=job, timeout=5)
    assert resp.status_code == 204, resp.text


@pytest.fixture
def jobs_sidecar(app: TinyApp) -> Iterator[FakeDaprSidecar]:
    """1.18, calling the tiny app, job retries 10 ms apart."""
    with FakeDaprSidecar(
        app.url, runtime_version="1.18", app_token="app-secret", job_retry_interval=0.01
    ) as sidecar:
        yield sidecar
    assert sidecar.errors == []


def test_a_trigger_sends_exactly_the_data(app: TinyApp, jobs_sidecar: FakeDaprSidecar) -> None:
    data = {"taskId": 7, "kind": "reminder"}
    schedule_job(jobs_sidecar, "remind-7", dueTime="10s", data=data)

    assert jobs_sidecar.trigger_job("remind-7") == 200

    [call] = app.calls("/job/remind-7")
    assert call["method"] == "POST"
    assert json.loads(call["body"]) == data  # no envelope
    assert call["headers"]["content-type"] == "application/json"
    assert call["headers"]["dapr-api-token"] == "app-secret"
    assert "remind-7" not in jobs_sidecar.jobs  # a one-shot job is done after a 2xx


def test_a_failing_trigger_is_retried_until_it_succeeds(app, jobs_sidecar) -> None:
    schedule_job(jobs_sidecar, "remind-7", dueTime="10s", data={})
    app.answer("/job/remind-7", (500, b""), (503, b""), (200, b""))

    assert jobs_sidecar.trigger_job("remind-7") == 200

    assert jobs_sidecar.job_triggers == [("remind-7", 500), ("remind-7", 503), ("remind-7", 200)]
    assert "remind-7" not in jobs_sidecar.jobs


def test_a_404_ends_the_trigger_without_a_retry(app, jobs_sidecar) -> None:
    schedule_job(jobs_sidecar, "sweep", schedule="@every 1m", data={})
    app.answer("/job/sweep", (404, b""))

    assert jobs_sidecar.trigger_job("sweep") == 404

    assert jobs_sidecar.job_triggers == [("sweep", 404)]
    assert "sweep" in jobs_sidecar.jobs  # a recurring job stays for its next tick


def test_daprs_failure_policy_is_three_retries_one_second_apart(app: TinyApp) -> None:
    with FakeDaprSidecar(app.url, runtime_version="1.18") as dapr:
        schedule_job(dapr, "remind-7", dueTime="10s", data={})
        app.answer("/job/remind-7", (500, b""))

        assert dapr.trigger_job("remind-7") == 500

        calls = app.calls("/job/remind-7")
        assert len(calls) == 4  # the call and 3 retries
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(calls)]
        assert all(0.95 <= gap < 2 for gap in gaps), gaps
        assert "remind-7" not in dapr.jobs  # that trigger is dropped, and it was the only one


def test_a_recurring_job_keeps_its_schedule_after_a_dropped_trigger(app, jobs_sidecar) -> None:
    schedule_job(jobs_sidecar, "sweep", schedule="@every 1m", data={})
    app.answer("/job/sweep", (500, b""))

    assert jobs_sidecar.trigger_job("sweep") == 500

    assert len(app.calls("/job/sweep")) == 4
    assert "sweep" in jobs_sidecar.jobs


def test_a_job_failure_policy_given_at_scheduling_is_used(app, jobs_sidecar) -> None:
    schedule_job(jobs_sidecar, "once", dueTime="10s", data={}, failurePolicy={"drop": {}})
    constant = {"constant": {"interval": "0.01s", "maxRetries": 1}}
    schedule_job(jobs_sidecar, "twice", dueTime="10s", data={}, failurePolicy=constant)
    app.answer("/job/once", (500, b""))
    app.answer("/job/twice", (500, b""))

    jobs_sidecar.trigger_job("once")
    jobs_sidecar.trigger_job("twice")

    assert (len(app.calls("/job/once")), len(app.calls("/job/twice"))) == (1, 2)


@pytest.fixture
def scheduler(app: TinyApp) -> Iterator[FakeDaprSidecar]:
    """1.18 with the scheduler thread on (as run by hand with --deliver)."""
    with FakeDaprSidecar(app.url, runtime_version="1.18", fire_jobs=True) as sidecar:
        yield sidecar
    assert sidecar.errors == []


def test_the_scheduler_fires_a_job_at_its_due_time(app, scheduler) -> None:
    before = time.time()
    schedule_job(scheduler, "remind-7", dueTime="1s", data={"taskId": 7})
    after = time.time()

    wait_for(lambda: app.calls("/job/remind-7"))

    [call] = app.calls("/job/remind-7")
    assert json.loads(call["body"]) == {"taskId": 7}
    # Due 1 s after the scheduler's clock, which counts whole seconds: never earlier.
    assert int(before) + 1 <= call["at"] < after + 3
    wait_for(lambda: "remind-7" not in scheduler.jobs)


def test_a_job_due_in_the_past_fires_at_once(app, scheduler) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    schedule_job(scheduler, "late", dueTime=past, data={})

    wait_for(lambda: app.calls("/job/late"), timeout=3)


def test_the_scheduler_follows_a_cron_schedule_with_seconds(app, scheduler) -> None:
    now = datetime.now(UTC)
    tick = (now + timedelta(days=1)).replace(hour=9, minute=30, second=15, microsecond=0)
    scheduler.advance_clock(tick.timestamp() - time.time() - 2)  # 2 s before 09:30:15
    schedule_job(scheduler, "morning", schedule="15 30 9 * * *", data={})

    time.sleep(0.5)
    assert app.calls("/job/morning") == []  # not before its second
    scheduler.advance_clock(2.5)
    wait_for(lambda: app.calls("/job/morning"), timeout=3)
    time.sleep(0.3)
    assert len(app.calls("/job/morning")) == 1  # next: tomorrow
    assert "morning" in scheduler.jobs


def test_a_job_stops_after_its_repeats(app, scheduler) -> None:
    schedule_job(scheduler, "twice", schedule="@every 10s", repeats=2, data={})

    scheduler.advance_clock(60)

    wait_for(lambda: "twice" not in scheduler.jobs)
    assert len(app.calls("/job/twice")) == 2


def test_a_job_stops_at_its_ttl(app, scheduler) -> None:
    schedule_job(scheduler, "brief", schedule="@every 10s", ttl="25s", data={})

    scheduler.advance_clock(60)

    wait_for(lambda: "brief" not in scheduler.jobs)
    assert len(app.calls("/job/brief")) == 2  # at 10 s and 20 s; 30 s is past the ttl


def test_a_due_time_and_a_schedule_start_at_the_due_time(app, scheduler) -> None:
    schedule_job(scheduler, "later", dueTime="1h", schedule="@every 1m", repeats=2, data={})

    scheduler.advance_clock(3599)
    time.sleep(0.3)
    assert app.calls("/job/later") == []
    scheduler.advance_clock(2)
    wait_for(lambda: len(app.calls("/job/later")) == 1, timeout=3)
    scheduler.advance_clock(60)
    wait_for(lambda: "later" not in scheduler.jobs)
    assert len(app.calls("/job/later")) == 2


def test_a_deleted_job_never_fires(app, scheduler) -> None:
    schedule_job(scheduler, "gone", dueTime="1h", data={})
    assert requests.delete(job_url(scheduler, "gone"), timeout=5).status_code == 204

    scheduler.advance_clock(7200)
    time.sleep(0.3)

    assert app.calls("/job/gone") == []


# --------------------------------------------------------------------------- delivery


def test_subscriptions_are_read_and_normalised(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url, app_token="app-secret")
    subs = dapr.subscriptions()
    assert [s["topic"] for s in subs] == ["tasks", "legacy", "rules-only"]
    assert subs[0]["routes"]["default"] == "/events/other"
    assert subs[0]["deadLetterTopic"] == "tasks-dead"
    assert subs[1]["routes"] == {"rules": [], "default": "/legacy"}
    assert "route" not in subs[1]
    dapr.subscriptions()  # read once
    assert len(app.calls("/dapr/subscribe")) == 1
    assert app.calls("/dapr/subscribe")[0]["headers"]["dapr-api-token"] == "app-secret"
    dapr.subscriptions(refresh=True)
    assert len(app.calls("/dapr/subscribe")) == 2


@pytest.mark.parametrize("status", [201, 204, 404, 500])
def test_only_a_200_subscribe_answer_is_read(app: TinyApp, status: int, caplog) -> None:
    app.answer("/dapr/subscribe", (status, json.dumps(SUBSCRIPTIONS).encode()))
    dapr = FakeDaprSidecar(app.url)

    assert dapr.subscriptions() == []

    assert str(status) in caplog.text
    with pytest.raises(LookupError):
        dapr.deliver("tasks", cloud_event("e-1"))


def test_deliver_routes_by_rules_and_sends_daprs_headers(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url, app_token="app-secret")
    assert dapr.deliver("tasks", cloud_event("e-1", "task.created")) == SUCCESS
    assert dapr.deliver("tasks", cloud_event("e-2", "task.deleted")) == SUCCESS
    assert dapr.deliver("tasks", cloud_event("e-3", "task.renamed")) == SUCCESS
    assert dapr.deliver("legacy", cloud_event("e-4")) == SUCCESS
    assert [d.path for d in dapr.deliveries] == [
        "/events/created",
        "/events/deleted",
        "/events/other",
        "/legacy",
    ]
    call = app.calls("/events/created")[0]
    assert call["headers"]["content-type"] == CLOUDEVENTS_CONTENT_TYPE
    assert call["headers"]["dapr-api-token"] == "app-secret"
    assert call["headers"]["traceparent"].startswith("00-")
    assert call["headers"]["pubsubname"] == PUBSUB
    body = json.loads(call["body"])
    assert body["id"] == "e-1" and body["topic"] == "tasks" and body["pubsubname"] == PUBSUB
    with pytest.raises(LookupError):
        dapr.deliver("nobody-listens", cloud_event("e-5"))


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"status": "SUCCESS"}', SUCCESS),
        (200, b"", SUCCESS),
        (204, b"", SUCCESS),
        (200, b'{"ok": true}', SUCCESS),
        (200, b"plain text", SUCCESS),
        (200, b'{"status": "RETRY"}', RETRY),
        (200, b'{"status": "maybe"}', RETRY),
        (200, b'{"status": "DROP"}', DROP),
        (404, b"", DROP),
        (500, b'{"status": "SUCCESS"}', ERROR),
        (503, b"", ERROR),
    ],
)
def test_deliver_reads_the_answer_like_daprd(
    app: TinyApp, status: int, body: bytes, outcome: str
) -> None:
    dapr = FakeDaprSidecar(app.url)
    app.answer("/events/created", (status, body))
    assert dapr.deliver("tasks", cloud_event("e-1")) == outcome
    delivery = dapr.deliveries[-1]
    assert (delivery.http_status, delivery.outcome) == (status, outcome)
    assert delivery.event_id == "e-1" and delivery.topic == "tasks"
    assert interpret_app_response(status, body) == outcome


def test_drop_goes_to_the_dead_letter_topic_but_404_does_not(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url)
    app.answer("/events/created", (200, b'{"status": "DROP"}'))
    assert dapr.deliver("tasks", cloud_event("e-1")) == DROP
    app.answer("/events/created", (404, b""))
    assert dapr.deliver("tasks", cloud_event("e-2")) == DROP
    assert [e["id"] for e in dapr.events("tasks-dead")] == ["e-1"]
    assert dapr.published[0].dead_letter is True


def test_an_event_no_route_matches_is_dead_lettered_unsent(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url)

    assert dapr.deliver("rules-only", cloud_event("e-1", "other")) == DROP
    assert dapr.deliver("rules-only", cloud_event("e-2", "kept")) == SUCCESS

    assert app.delivered_ids("/kept") == ["e-2"]
    assert [e["id"] for e in dapr.events("rules-only-dead")] == ["e-1"]


def test_an_expired_event_is_dead_lettered_unsent(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url)
    event = dict(cloud_event("e-1"), expiration="2000-01-01T00:00:00Z")

    assert dapr.deliver("tasks", event) == DROP

    assert app.calls("/events/created") == []
    assert [e["id"] for e in dapr.events("tasks-dead")] == ["e-1"]


def test_unreachable_app_is_an_error(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url)
    dapr.subscriptions()
    app.close()  # the app goes away after discovery
    assert dapr.deliver("tasks", cloud_event("e-1")) == ERROR
    assert dapr.deliveries[-1].http_status == 0


def test_redelivery_follows_the_retry_policy(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url, retry_policy=RetryPolicy(max_retries=3, interval=0.01))
    app.answer(
        "/events/created",
        (200, b'{"status": "RETRY"}'),
        (500, b""),
        (200, b'{"status": "SUCCESS"}'),
    )
    assert dapr.deliver_with_redelivery("tasks", cloud_event("e-1")) == SUCCESS
    assert [d.outcome for d in dapr.deliveries] == [RETRY, ERROR, SUCCESS]
    assert dapr.events("tasks-dead") == []

    app.answer("/events/created", (500, b""))
    assert dapr.deliver_with_redelivery("tasks", cloud_event("e-2")) == ERROR
    assert len([d for d in dapr.deliveries if d.event_id == "e-2"]) == 4  # 1 + 3 redeliveries
    assert [e["id"] for e in dapr.events("tasks-dead")] == ["e-2"]


def test_retry_policy_backoff() -> None:
    constant = RetryPolicy(max_retries=2, interval=2.0)
    assert [constant.delay(n) for n in (1, 2, 3)] == [2.0, 2.0, 2.0]
    assert [constant.allows(n) for n in (0, 1, 2)] == [True, True, False]
    exponential = RetryPolicy(interval=0.5, max_interval=1.0)
    assert [exponential.delay(n) for n in (1, 2, 3)] == [0.5, 0.75, 1.0]
    assert RetryPolicy().allows(10_000)  # -1: forever
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-2)


# --------------------------------------------------------------------------- the Kafka model


def test_auto_deliver_and_drain(app: TinyApp) -> None:
    app.answer("/events/other", (200, b'{"status": "RETRY"}'), (200, b""))
    with FakeDaprSidecar(app.url, auto_deliver=True) as dapr:
        for n in range(3):
            ce = cloud_event(f"e-{n}", "task.created", n=n)
            resp = publish(dapr, "tasks", ce, ce=True, params={"metadata.partitionKey": "k1"})
            assert resp.status_code == 204
        assert publish(dapr, "tasks", cloud_event("e-x", "task.moved"), ce=True).status_code == 204
        assert publish(dapr, "unsubscribed", {"a": 1}).status_code == 204
        dapr.drain(timeout=5)
        calls = app.calls("/events/created")
        assert app.delivered_ids("/events/created") == ["e-0", "e-1", "e-2"]
        assert calls[0]["headers"]["__key"] == "k1"
        assert [c["headers"]["__offset"] for c in calls] == ["0", "1", "2"]
        assert {c["headers"]["__partition"] for c in calls} == {"0"}
        assert [d.outcome for d in dapr.deliveries if d.event_id == "e-x"] == [RETRY, SUCCESS]
        assert not any(d.topic == "unsubscribed" for d in dapr.deliveries)
        assert dapr.errors == []


def keys_in_partitions(broker: InMemoryBroker, count: int) -> list[str]:
    """One key per partition 0..count-1."""
    found: dict[int, str] = {}
    for n in range(1000):
        found.setdefault(broker.partition_for(PUBSUB, "tasks", f"task-{n}"), f"task-{n}")
        if len(found) == count:
            return [found[p] for p in range(count)]
    raise AssertionError("no key for every partition")


def publish_keyed(dapr: FakeDaprSidecar, event: dict, key: str) -> None:
    resp = publish(dapr, "tasks", event, ce=True, params={"metadata.partitionKey": key})
    assert resp.status_code == 204


def test_a_message_being_retried_holds_back_its_partition(app: TinyApp) -> None:
    app.answer("/events/created", (500, b""))  # a poison message: every attempt fails
    broker = InMemoryBroker(partitions=1)
    forever = RetryPolicy(max_retries=-1, interval=0.01)
    with FakeDaprSidecar(app.url, auto_deliver=True, retry_policy=forever, broker=broker) as dapr:
        publish_keyed(dapr, cloud_event("poison", "task.created"), "task-1")
        publish_keyed(dapr, cloud_event("next", "task.deleted"), "task-2")

        wait_for(lambda: len(app.calls("/events/created")) >= 20)

        assert app.calls("/events/deleted") == []  # same partition: it waits, as in Kafka
        assert dapr.events("tasks-dead") == []
        with pytest.raises(AssertionError, match="2 events still waiting"):
            dapr.drain(timeout=0.2)


def test_other_partitions_flow_while_one_is_retried(app: TinyApp) -> None:
    app.answer("/events/created", (500, b""))
    broker = InMemoryBroker(partitions=2)
    poison_key, other_key = keys_in_partitions(broker, 2)
    forever = RetryPolicy(max_retries=-1, interval=0.01)
    with FakeDaprSidecar(app.url, auto_deliver=True, retry_policy=forever, broker=broker) as dapr:
        publish_keyed(dapr, cloud_event("poison", "task.created"), poison_key)
        publish_keyed(dapr, cloud_event("next", "task.deleted"), other_key)

        wait_for(lambda: app.calls("/events/deleted"))

        assert app.delivered_ids("/events/deleted") == ["next"]
        assert app.calls("/events/deleted")[0]["headers"]["__partition"] == "1"


def test_after_the_retry_budget_the_message_is_dead_lettered_and_its_partition_moves_on(
    app: TinyApp,
) -> None:
    app.answer("/events/created", (200, b'{"status": "RETRY"}'))
    policy = RetryPolicy(max_retries=3, interval=0.01)
    with FakeDaprSidecar(app.url, auto_deliver=True, retry_policy=policy) as dapr:
        publish_keyed(dapr, cloud_event("poison", "task.created"), "task-1")
        publish_keyed(dapr, cloud_event("next", "task.deleted"), "task-1")

        dapr.drain(timeout=5)

        assert len(app.calls("/events/created")) == 4
        assert [e["id"] for e in dapr.events("tasks-dead")] == ["poison"]
        assert app.delivered_ids("/events/deleted") == ["next"]
        order = [(d.event_id, d.outcome) for d in dapr.deliveries]
        assert order[-1] == ("next", SUCCESS) and order.index(("next", SUCCESS)) == 4


def test_a_restarted_sidecar_redelivers_what_was_not_acknowledged(app: TinyApp) -> None:
    app.answer("/events/created", (503, b""))
    dapr = FakeDaprSidecar(
        app.url, auto_deliver=True, retry_policy=RetryPolicy(max_retries=-1, interval=0.02)
    ).start()
    try:
        publish_keyed(dapr, cloud_event("e-1", "task.created"), "task-1")
        wait_for(lambda: app.calls("/events/created"))
        dapr.stop()
        app.answer("/events/created", (200, b""))  # the app recovers while daprd is down

        dapr.start()
        dapr.drain(timeout=5)

        assert [d.outcome for d in dapr.deliveries][-1] == SUCCESS
        assert [d.event_id for d in dapr.deliveries if d.outcome == SUCCESS] == ["e-1"]
        assert len(app.calls("/dapr/subscribe")) == 2  # read again at start, as daprd does
    finally:
        dapr.stop()


# --------------------------------------------------------------------------- by hand


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_by_hand_it_delivers_events_and_fires_due_jobs(app: TinyApp) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tests.support.fake_dapr",
        *("--port", str(port), "--app-url", app.url, "--runtime-version", "1.18", "--deliver"),
    ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{url}/v1.0/healthz/outbound"), timeout=10)
        job = {"dueTime": "1s", "data": {"task_id": 7}}
        assert requests.post(f"{url}/v1.0/jobs/reminder-task-7", json=job, timeout=5).ok
        event = cloud_event("e-1", "task.created")
        assert requests.post(
            f"{url}/v1.0/publish/{PUBSUB}/tasks", json=event, headers=CE_HEADERS, timeout=5
        ).ok

        wait_for(lambda: app.calls("/job/reminder-task-7"), timeout=5)
        wait_for(lambda: app.calls("/events/created"), timeout=5)
        assert json.loads(app.calls("/job/reminder-task-7")[0]["body"]) == {"task_id": 7}
        time.sleep(0.5)  # it prints what happened every 0.2 s
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert '"job": "reminder-task-7", "status": 200' in output


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=3).status_code == 204
    except requests.ConnectionError:
        return False


# --------------------------------------------------------------------------- pubsub.redis


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis broker URL with a key prefix of this test's own; its keys are deleted after."""
    require_service("Redis", "127.0.0.1", 6379)
    url = f"redis://127.0.0.1:6379/13?keyPrefix=fake-dapr-{uuid.uuid4().hex[:12]}-"
    yield url
    cleanup = RedisStreamsBroker(url)
    cleanup.purge()
    cleanup.close()


def redis_sidecar(app: TinyApp | None, redis_url: str, app_id: str, **kwargs: Any):
    """A sidecar for ``app_id`` on the shared Redis broker, delivering in the background."""
    kwargs.setdefault("retry_policy", RetryPolicy(max_retries=-1, interval=0.01))
    broker = RedisStreamsBroker(redis_url, **kwargs.pop("broker_options", {}))
    return FakeDaprSidecar(
        app.url if app else None,
        app_id=app_id,
        auto_deliver=app is not None,
        broker=broker,
        **kwargs,
    )


def groups(broker: RedisStreamsBroker, topic: str) -> dict[str, int]:
    """Consumer group -> messages pending in it ({} while the stream does not exist)."""
    if not broker.client.exists(broker.stream(topic)):
        return {}
    return {
        g["name"].decode(): g["pending"] for g in broker.client.xinfo_groups(broker.stream(topic))
    }


def test_a_publish_is_an_xadd_of_the_cloudevent_and_its_metadata(redis_url: str) -> None:
    with redis_sidecar(None, redis_url, "web") as dapr:
        event = cloud_event("e-1", "task.created")
        publish_keyed(dapr, event, "task-7")

        [(entry_id, fields)] = dapr.broker.entries("tasks")

    assert set(fields) == {"data", "metadata"}
    stored = json.loads(fields["data"])
    assert stored["id"] == "e-1" and stored["topic"] == "tasks" and stored["data"] == {"taskId": 1}
    assert json.loads(fields["metadata"]) == {"partitionKey": "task-7"}
    assert dapr.published[0].partition == 0 and "-" in entry_id  # a stream id, ms-seq


def test_each_app_id_has_its_own_consumer_group_and_gets_every_message(redis_url: str) -> None:
    notifications, recurrence = TinyApp(SUBSCRIPTIONS), TinyApp(SUBSCRIPTIONS)
    web = redis_sidecar(None, redis_url, "web").start()
    try:
        publish_keyed(web, cloud_event("before", "task.created"), "task-1")  # no group yet
        with (
            redis_sidecar(notifications, redis_url, "notifications") as first,
            redis_sidecar(recurrence, redis_url, "recurrence") as second,
        ):
            for n in range(3):
                publish_keyed(web, cloud_event(f"e-{n}", "task.created"), f"task-{n}")
            first.drain(timeout=5)
            second.drain(timeout=5)

            expected = ["before", "e-0", "e-1", "e-2"]
            assert notifications.delivered_ids("/events/created") == expected
            assert recurrence.delivered_ids("/events/created") == expected
            assert groups(web.broker, "tasks") == {"notifications": 0, "recurrence": 0}
    finally:
        web.stop()
        notifications.close()
        recurrence.close()


def test_two_sidecars_of_one_app_id_share_its_group(redis_url: str) -> None:
    one, two = TinyApp(SUBSCRIPTIONS), TinyApp(SUBSCRIPTIONS)
    try:
        with (
            redis_sidecar(one, redis_url, "notifications") as first,
            redis_sidecar(two, redis_url, "notifications") as second,
        ):
            wait_for(lambda: len(groups(first.broker, "tasks")) == 1)
            for n in range(20):
                publish_keyed(first if n % 2 else second, cloud_event(f"e-{n}"), f"task-{n}")
            first.drain(timeout=5)
            second.drain(timeout=5)
            delivered = one.delivered_ids("/events/created") + two.delivered_ids("/events/created")
            assert sorted(delivered) == sorted(f"e-{n}" for n in range(20))  # each once
            assert groups(first.broker, "tasks") == {"notifications": 0}
    finally:
        one.close()
        two.close()


def test_a_drop_is_dead_lettered_with_its_metadata_and_acknowledged(
    app: TinyApp, redis_url: str
) -> None:
    app.answer("/events/created", (200, b'{"status": "DROP"}'))
    with redis_sidecar(app, redis_url, "notifications") as dapr:
        publish_keyed(dapr, cloud_event("poison"), "task-1")
        dapr.drain(timeout=5)

        [(_, fields)] = dapr.broker.entries("tasks-dead")
        assert json.loads(fields["data"])["id"] == "poison"
        assert json.loads(fields["metadata"]) == {"partitionKey": "task-1"}
        assert groups(dapr.broker, "tasks") == {"notifications": 0}
        assert [e["id"] for e in dapr.broker.events("tasks-dead")] == ["poison"]


def test_after_the_retry_budget_a_redis_message_is_dead_lettered_and_its_lane_moves_on(
    app: TinyApp, redis_url: str
) -> None:
    app.answer("/events/created", (200, b'{"status": "RETRY"}'))
    policy = RetryPolicy(max_retries=2, interval=0.01)
    with redis_sidecar(app, redis_url, "notifications", retry_policy=policy) as dapr:
        publish_keyed(dapr, cloud_event("poison", "task.created"), "task-1")
        publish_keyed(dapr, cloud_event("next", "task.deleted"), "task-2")  # the same lane
        dapr.drain(timeout=5)

        assert len(app.calls("/events/created")) == 3
        assert [e["id"] for e in dapr.broker.events("tasks-dead")] == ["poison"]
        order = [(d.event_id, d.outcome) for d in dapr.deliveries]
        assert order == [("poison", RETRY)] * 3 + [("next", SUCCESS)]
        assert app.calls("/events/deleted")[0]["headers"]["partitionkey"] == "task-2"


def test_a_message_being_retried_holds_back_its_lane_on_redis(app: TinyApp, redis_url) -> None:
    app.answer("/events/created", (500, b""))
    with redis_sidecar(app, redis_url, "notifications") as dapr:
        publish_keyed(dapr, cloud_event("poison", "task.created"), "task-1")
        publish_keyed(dapr, cloud_event("next", "task.deleted"), "task-2")

        wait_for(lambda: len(app.calls("/events/created")) >= 20)

        assert app.calls("/events/deleted") == []
        assert dapr.broker.events("tasks-dead") == []
        with pytest.raises(AssertionError, match="2 events still waiting"):
            dapr.drain(timeout=0.2)


def test_other_lanes_flow_while_one_is_retried_on_redis(app: TinyApp, redis_url: str) -> None:
    app.answer("/events/created", (500, b""))
    options = {"partitions": 2}
    with redis_sidecar(app, redis_url, "notifications", broker_options=options) as dapr:
        poison_key, other_key = keys_in_partitions(dapr.broker, 2)
        publish_keyed(dapr, cloud_event("poison", "task.created"), poison_key)
        publish_keyed(dapr, cloud_event("next", "task.deleted"), other_key)

        wait_for(lambda: app.calls("/events/deleted"))

        assert app.delivered_ids("/events/deleted") == ["next"]


@pytest.mark.parametrize(("version", "acknowledged"), [("1.16", False), ("1.17", True)])
def test_without_a_dead_letter_topic_a_failed_message_is_acked_from_1_17(
    app: TinyApp, redis_url: str, version: str, acknowledged: bool
) -> None:
    app.answer("/legacy", (500, b""))
    policy = RetryPolicy(max_retries=1, interval=0.01)
    options = {"processing_timeout": 0.3, "redeliver_interval": 0.1}
    with redis_sidecar(
        app,
        redis_url,
        "notifications",
        retry_policy=policy,
        runtime_version=version,
        broker_options=options,
    ) as dapr:
        publish(dapr, "legacy", cloud_event("e-1"), ce=True)
        wait_for(lambda: len(app.calls("/legacy")) >= 2)
        time.sleep(0.8)  # more than the processing timeout

        calls = len(app.calls("/legacy"))
        if acknowledged:  # components-contrib 1.17: XACK after the handler's error
            assert calls == 2 and groups(dapr.broker, "legacy") == {"notifications": 0}
        else:  # before: left pending, claimed again after processingTimeout, forever
            assert calls >= 4 and groups(dapr.broker, "legacy") == {"notifications": 1}


def test_a_message_left_pending_by_a_stopped_sidecar_is_claimed_after_the_processing_timeout(
    app: TinyApp, redis_url: str
) -> None:
    app.answer("/events/created", (503, b""))
    options = {"processing_timeout": 0.5, "redeliver_interval": 0.1}
    dapr = redis_sidecar(app, redis_url, "notifications", broker_options=options).start()
    try:
        publish_keyed(dapr, cloud_event("e-1"), "task-1")
        wait_for(lambda: app.calls("/events/created"))
        dapr.stop()  # mid-retry: the message stays pending in the group
        assert groups(dapr.broker, "tasks") == {"notifications": 1}
        app.answer("/events/created", (200, b""))

        started = time.monotonic()
        dapr.start()
        dapr.drain(timeout=5)

        assert time.monotonic() - started >= 0.4  # not before it was idle long enough
        assert [d.event_id for d in dapr.deliveries if d.outcome == SUCCESS] == ["e-1"]
        assert groups(dapr.broker, "tasks") == {"notifications": 0}
    finally:
        dapr.stop()


def test_run_by_hand_on_redis_two_app_ids_share_the_broker(app: TinyApp, redis_url) -> None:
    other = TinyApp(SUBSCRIPTIONS)
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.fake_dapr",
                *("--port", str(port), "--app-url", tiny.url, "--app-id", app_id),
                *("--broker", redis_url, "--deliver"),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for port, tiny, app_id in zip(ports, (app, other), ("web", "notifications"), strict=True)
    ]
    try:
        for port in ports:
            wait_for(lambda port=port: _answers(f"http://127.0.0.1:{port}/v1.0/healthz"), 10)
        wait_for(lambda: len(groups(RedisStreamsBroker(redis_url), "tasks")) == 2, 10)
        event = cloud_event("e-1", "task.created")
        assert requests.post(
            f"http://127.0.0.1:{ports[0]}/v1.0/publish/{PUBSUB}/tasks",
            json=event,
            headers=CE_HEADERS,
            timeout=5,
        ).ok

        wait_for(lambda: app.calls("/events/created") and other.calls("/events/created"), 10)
    finally:
        for process in processes:
            process.terminate()
            process.communicate(timeout=10)
        other.close()


def test_a_client_keeps_its_connection_between_calls_until_the_sidecar_stops() -> None:
    """daprd serves HTTP/1.1 keep-alive; a stopped sidecar still cuts a pooled connection."""
    dapr = FakeDaprSidecar().start()
    try:
        session = requests.Session()
        url = f"{dapr.url}/v1.0/publish/{PUBSUB}/tasks"
        for n in range(3):
            assert session.post(url, json={"n": n}, timeout=5).status_code == 204
        assert len(dapr._server._connections) == 1  # one connection served all three

        dapr.stop()

        with pytest.raises(requests.ConnectionError):
            session.post(url, json={"n": 3}, timeout=2)
        assert [e["data"]["n"] for e in dapr.events("tasks")] == [0, 1, 2]
    finally:
        dapr.stop()
