"""Self-tests for the fake Dapr sidecar, exercising it over HTTP as a client would.

Run with: .venv/bin/python -m pytest tests/support/test_fake_dapr.py -p no:django -q
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.support.fake_dapr import (
    CLOUDEVENTS_CONTENT_TYPE,
    DROP,
    ERROR,
    RETRY,
    SUCCESS,
    FakeDaprSidecar,
    interpret_app_response,
)

PUBSUB = "pubsub-kafka"
STORE = "statestore-postgres"
CE_HEADERS = {"Content-Type": CLOUDEVENTS_CONTENT_TYPE}

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
                }
            )
            if path == "/dapr/subscribe":
                return 200, json.dumps(self.subscriptions).encode()
            queue = self._answers.get(path)
            if not queue:
                return 200, b'{"status": "SUCCESS"}'
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def calls(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

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


def publish(
    sidecar: FakeDaprSidecar, topic: str, body: Any, *, ce: bool = False, **kwargs: Any
) -> requests.Response:
    headers = dict(CE_HEADERS) if ce else {"Content-Type": "application/json"}
    headers.update(kwargs.pop("headers", {}))
    return requests.post(
        f"{sidecar.url}/v1.0/publish/{PUBSUB}/{topic}",
        data=json.dumps(body),
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


# --------------------------------------------------------------------------- publishing


def test_app_made_cloudevent_keeps_its_id(dapr: FakeDaprSidecar) -> None:
    ce = cloud_event("0b7c1c9e-outbox-row", topic="wrong", pubsubname="wrong")
    ce["topic"], ce["pubsubname"] = "wrong", "wrong"
    resp = publish(dapr, "tasks", ce, ce=True, params={"metadata.partitionKey": "42"})
    assert resp.status_code == 204 and resp.content == b""

    resp = publish(dapr, "tasks", ce, ce=True, params={"metadata.partitionKey": "42"})
    assert resp.status_code == 204
    first, second = dapr.events("tasks")
    assert first["id"] == second["id"] == "0b7c1c9e-outbox-row"
    assert first["topic"] == "tasks" and first["pubsubname"] == PUBSUB
    assert first["time"] and first["traceparent"].startswith("00-")
    assert first["data"] == ce["data"]
    record = dapr.published[0]
    assert record.query == {"metadata.partitionKey": "42"}
    assert record.raw_content_type == CLOUDEVENTS_CONTENT_TYPE
    assert record.headers["Content-Type"] == CLOUDEVENTS_CONTENT_TYPE
    assert dapr.events("other") == []


def test_plain_json_is_wrapped_with_a_new_id_each_time(dapr: FakeDaprSidecar) -> None:
    body = {"taskId": 7, "title": "write tests"}
    assert publish(dapr, "tasks", body).status_code == 204
    assert publish(dapr, "tasks", body).status_code == 204
    first, second = dapr.wait_for_events(2, topic="tasks")
    assert first["id"] != second["id"]
    for event in (first, second):
        assert event["data"] == body
        assert event["source"] == "fake-dapr"
        assert event["type"] == "com.dapr.event.sent"
        assert event["specversion"] == "1.0"
        assert event["datacontenttype"] == "application/json"
        assert event["topic"] == "tasks" and event["pubsubname"] == PUBSUB


def test_publish_errors(dapr: FakeDaprSidecar) -> None:
    resp = requests.post(f"{dapr.url}/v1.0/publish/nope/tasks", json={"a": 1}, timeout=5)
    assert resp.status_code == 404
    assert resp.json()["errorCode"] == "ERR_PUBSUB_NOT_FOUND"

    resp = requests.post(
        f"{dapr.url}/v1.0/publish/{PUBSUB}/tasks",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert resp.status_code == 400
    resp = publish(dapr, "tasks", [1, 2], ce=True)  # a CloudEvent must be an object
    assert resp.status_code == 400
    assert dapr.published == []
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
        assert meta.status_code == 200 and meta.json()["id"]
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


def test_reject_topic_is_permanent(dapr: FakeDaprSidecar) -> None:
    dapr.reject_topic("forbidden", status=403)
    for _ in range(3):
        resp = publish(dapr, "forbidden", {"a": 1})
        assert resp.status_code == 403
        assert resp.json()["errorCode"]
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


def test_bulk_publish(dapr: FakeDaprSidecar) -> None:
    bulk_url = f"{dapr.url}/v1.0-alpha1/publish/bulk/{PUBSUB}/tasks"
    entries = [
        {
            "entryId": "1",
            "event": cloud_event("ce-1"),
            "contentType": CLOUDEVENTS_CONTENT_TYPE,
            "metadata": {"partitionKey": "t-1"},
        },
        {"entryId": "2", "event": {"plain": True}, "contentType": "application/json"},
    ]
    resp = requests.post(bulk_url, json=entries, timeout=5)
    assert resp.status_code == 204
    first, second = dapr.events("tasks")
    assert first["id"] == "ce-1" and first["topic"] == "tasks"
    assert second["data"] == {"plain": True} and second["id"] != "2"
    assert dapr.published[0].query == {"metadata.partitionKey": "t-1"}

    dapr.fail_publishes(1)
    resp = requests.post(bulk_url, json=entries, timeout=5)
    assert resp.status_code == 500
    body = resp.json()
    assert body["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
    assert [f["entryId"] for f in body["failedEntries"]] == ["1", "2"]

    dapr.reject_topic("tasks", 500)
    resp = requests.post(bulk_url, json=entries, timeout=5)
    assert resp.status_code == 500 and len(resp.json()["failedEntries"]) == 2
    assert len(dapr.events()) == 2

    dup = [dict(entries[1]), dict(entries[1])]
    assert requests.post(bulk_url, json=dup, timeout=5).status_code == 400


# --------------------------------------------------------------------------- state


def save(dapr: FakeDaprSidecar, items: list[dict], store: str = STORE) -> requests.Response:
    return requests.post(f"{dapr.url}/v1.0/state/{store}", json=items, timeout=5)


def get(dapr: FakeDaprSidecar, key: str) -> requests.Response:
    return requests.get(f"{dapr.url}/v1.0/state/{STORE}/{key}", timeout=5)


def test_state_save_get_and_etags(dapr: FakeDaprSidecar) -> None:
    assert get(dapr, "missing").status_code == 204

    assert save(dapr, [{"key": "task-1", "value": {"title": "a"}}]).status_code == 204
    resp = get(dapr, "task-1")
    assert resp.status_code == 200 and resp.json() == {"title": "a"}
    etag = resp.headers["ETag"]
    assert etag

    stale = save(dapr, [{"key": "task-1", "value": {"title": "b"}, "etag": etag + "x"}])
    assert stale.status_code == 409
    assert stale.json()["errorCode"] == "ERR_STATE_SAVE"
    assert get(dapr, "task-1").json() == {"title": "a"}

    ok = save(dapr, [{"key": "task-1", "value": {"title": "b"}, "etag": etag}])
    assert ok.status_code == 204
    resp = get(dapr, "task-1")
    assert resp.json() == {"title": "b"} and resp.headers["ETag"] != etag
    # The old etag no longer matches.
    assert save(dapr, [{"key": "task-1", "value": 1, "etag": etag}]).status_code == 409
    # An etag on a key that does not exist is a mismatch too.
    assert save(dapr, [{"key": "nope", "value": 1, "etag": "1"}]).status_code == 409
    assert dapr.state(STORE) == {"task-1": {"title": "b"}}

    unknown = save(dapr, [{"key": "k", "value": 1}], store="nope")
    assert unknown.status_code == 400
    assert unknown.json()["errorCode"] == "ERR_STATE_STORE_NOT_FOUND"


def test_state_first_write(dapr: FakeDaprSidecar) -> None:
    first = {"key": "lock", "value": "me", "options": {"concurrency": "first-write"}}
    assert save(dapr, [first]).status_code == 204
    again = save(dapr, [dict(first, value="you")])
    # PostgreSQL store: first-write without an etag on an existing key fails (500, not 409).
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
    bad = requests.delete(url, headers={"If-Match": "999"}, timeout=5)
    assert bad.status_code == 409 and bad.json()["errorCode"] == "ERR_STATE_DELETE"
    assert get(dapr, "k").status_code == 200
    assert requests.delete(url, headers={"If-Match": etag}, timeout=5).status_code == 204
    assert get(dapr, "k").status_code == 204
    assert requests.delete(url, timeout=5).status_code == 204  # deleting nothing is fine


def test_state_transaction_is_all_or_nothing(dapr: FakeDaprSidecar) -> None:
    assert save(dapr, [{"key": "a", "value": 1}, {"key": "b", "value": 2}]).status_code == 204
    etag_b = get(dapr, "b").headers["ETag"]
    url = f"{dapr.url}/v1.0/state/{STORE}/transaction"
    bad = {
        "operations": [
            {"operation": "upsert", "request": {"key": "a", "value": 10}},
            {"operation": "upsert", "request": {"key": "c", "value": 30}},
            {"operation": "delete", "request": {"key": "b", "etag": "not-it"}},
        ]
    }
    resp = requests.post(url, json=bad, timeout=5)
    assert resp.status_code == 409
    assert dapr.state(STORE) == {"a": 1, "b": 2}

    good = {
        "operations": [
            {"operation": "upsert", "request": {"key": "a", "value": 10}},
            {"operation": "upsert", "request": {"key": "c", "value": 30}},
            {"operation": "delete", "request": {"key": "b", "etag": etag_b}},
        ]
    }
    assert requests.post(url, json=good, timeout=5).status_code == 204
    assert dapr.state(STORE) == {"a": 10, "c": 30}

    unsupported = {"operations": [{"operation": "merge", "request": {"key": "a"}}]}
    assert requests.post(url, json=unsupported, timeout=5).status_code == 400


# --------------------------------------------------------------------------- jobs


def test_jobs_api(dapr: FakeDaprSidecar) -> None:
    url = f"{dapr.url}/v1.0/jobs"
    job = {"schedule": "@every 5m", "data": {"kind": "check-due"}}
    assert requests.post(f"{url}/check-due", json=job, timeout=5).status_code == 204
    dup = requests.post(f"{url}/check-due", json=job, timeout=5)
    assert dup.status_code == 409
    changed = dict(job, schedule="@every 1m", overwrite=True)
    assert requests.post(f"{url}/check-due", json=changed, timeout=5).status_code == 204

    got = requests.get(f"{url}/check-due", timeout=5)
    assert got.status_code == 200
    assert got.json() == {"name": "check-due", "schedule": "@every 1m", "data": job["data"]}
    # The alpha path (1.14-1.17) reaches the same scheduler.
    alpha = requests.get(f"{dapr.url}/v1.0-alpha1/jobs/check-due", timeout=5)
    assert alpha.status_code == 200

    assert requests.get(f"{url}/missing", timeout=5).status_code == 500
    for bad_name in ("a%2Fb", "a%5Cb", "a%23b", "a%3Fb", "a%0Ab", "a%00b"):
        resp = requests.post(f"{url}/{bad_name}", json=job, timeout=5)
        assert resp.status_code == 400, bad_name

    assert requests.delete(f"{url}/check-due", timeout=5).status_code == 204
    assert requests.get(f"{url}/check-due", timeout=5).status_code == 500
    assert dapr.jobs == {}
    assert [(op, name) for op, name, _ in dapr.job_log] == [
        ("schedule", "check-due"),
        ("schedule", "check-due"),
        ("delete", "check-due"),
    ]
    assert dapr.job_log[1][2] == changed


def test_trigger_job_sends_exactly_the_data(app: TinyApp) -> None:
    with FakeDaprSidecar(app.url, app_token="app-secret") as dapr:
        url = f"{dapr.url}/v1.0-alpha1/jobs"
        data = {"taskId": 7, "kind": "reminder"}
        one_shot = {"dueTime": "10s", "data": data}
        recurring = {"schedule": "0 */5 * * * *", "data": {"sweep": True}}
        assert requests.post(f"{url}/remind-7", json=one_shot, timeout=5).status_code == 204
        assert requests.post(f"{url}/sweep", json=recurring, timeout=5).status_code == 204

        app.answer("/job/remind-7", (500, b""), (200, b""))
        assert dapr.trigger_job("remind-7") == 500
        assert "remind-7" in dapr.jobs  # failure: the scheduler keeps it
        assert dapr.trigger_job("remind-7") == 200
        assert "remind-7" not in dapr.jobs  # a one-shot job is done after a 2xx

        call = app.calls("/job/remind-7")[-1]
        assert call["method"] == "POST"
        assert json.loads(call["body"]) == data  # no envelope
        assert call["headers"]["content-type"] == "application/json"
        assert call["headers"]["dapr-api-token"] == "app-secret"

        app.answer("/job/sweep", (404, b""))
        assert dapr.trigger_job("sweep") == 404
        assert "sweep" in dapr.jobs  # a recurring job stays
        assert dapr.job_triggers == [("remind-7", 500), ("remind-7", 200), ("sweep", 404)]


# --------------------------------------------------------------------------- delivery


def test_subscriptions_are_read_and_normalised(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url, app_token="app-secret")
    subs = dapr.subscriptions()
    assert [s["topic"] for s in subs] == ["tasks", "legacy"]
    assert subs[0]["routes"]["default"] == "/events/other"
    assert subs[0]["deadLetterTopic"] == "tasks-dead"
    assert subs[1]["routes"] == {"rules": [], "default": "/legacy"}
    assert "route" not in subs[1]
    dapr.subscriptions()  # cached
    assert len(app.calls("/dapr/subscribe")) == 1
    assert app.calls("/dapr/subscribe")[0]["headers"]["dapr-api-token"] == "app-secret"
    dapr.subscriptions(refresh=True)
    assert len(app.calls("/dapr/subscribe")) == 2


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


def test_unreachable_app_is_an_error(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url)
    dapr.subscriptions()
    app.close()  # the app goes away after discovery
    assert dapr.deliver("tasks", cloud_event("e-1")) == ERROR
    assert dapr.deliveries[-1].http_status == 0


def test_deliver_with_redelivery(app: TinyApp) -> None:
    dapr = FakeDaprSidecar(app.url, max_redeliveries=3, redelivery_delay=0.01)
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


def test_auto_deliver_and_drain(app: TinyApp) -> None:
    app.answer("/events/other", (200, b'{"status": "RETRY"}'), (200, b""))
    with FakeDaprSidecar(app.url, auto_deliver=True, redelivery_delay=0.01) as dapr:
        for n in range(3):
            ce = cloud_event(f"e-{n}", "task.created", n=n)
            resp = publish(dapr, "tasks", ce, ce=True, params={"metadata.partitionKey": "k1"})
            assert resp.status_code == 204
        assert publish(dapr, "tasks", cloud_event("e-x", "task.moved"), ce=True).status_code == 204
        assert publish(dapr, "unsubscribed", {"a": 1}).status_code == 204
        dapr.drain(timeout=5)
        calls = app.calls("/events/created")
        assert [json.loads(c["body"])["id"] for c in calls] == ["e-0", "e-1", "e-2"]
        assert calls[0]["headers"]["__key"] == "k1"
        assert [c["headers"]["__offset"] for c in calls] == ["0", "1", "2"]
        assert [d.outcome for d in dapr.deliveries if d.event_id == "e-x"] == [RETRY, SUCCESS]
        assert not any(d.topic == "unsubscribed" for d in dapr.deliveries)
        assert dapr.errors == []
