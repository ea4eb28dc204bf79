"""Drill: PostgreSQL stops for 10 s during a write burst; clients retry, nothing is lost or doubled.

The app reaches PostgreSQL through a proxy the drill cuts (every connection closed, new ones
refused: what the app sees of a stopped server). While it is cut the API answers 503 with
``Retry-After`` (never a 500); each client waits that long and sends the same request again
with the same ``Idempotency-Key``, until it gets its 201. A write whose COMMIT reached the
server but whose answer was lost is answered from the stored response on the retry
(``Idempotent-Replayed: true``), so it is created once. Its events were committed with it
(the outbox) and are published once PostgreSQL is back.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests

from tests.drills.conftest import World, report
from tests.support.fake_dapr import SUCCESS

pytestmark = [pytest.mark.slow, pytest.mark.drill]

CLIENTS = 4
OUTAGE = 10.0  # seconds PostgreSQL is out of reach
BEFORE = 3.0  # seconds of writing before the cut
AFTER = 4.0  # seconds of writing after it is restored
RECOVERY_BOUND = 5.0  # seconds from PostgreSQL's return to the next 201
LOSE_EVERY = 10  # every 10th write's first answer is lost: the client stops waiting at once
REPLAYED = "Idempotent-Replayed"


@dataclass
class Write:
    """One create, as a client sees it: every answer until its 201."""

    key: str
    body: dict
    answers: list[tuple[float, int]] = field(default_factory=list)  # (time.monotonic(), status)
    task_id: int | None = None
    replayed: bool = False  # its 201 was the stored answer: an earlier attempt had committed

    @property
    def retried(self) -> bool:
        return len(self.answers) > 1


class Client(threading.Thread):
    """Creates tasks one after another until ``stop`` is set; retries each until it is 201."""

    def __init__(self, world: World, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.url = f"{world.app.url}/api/tasks/"
        self.session = requests.Session()
        self.session.headers.update(world.api.headers)
        self.stop = stop
        self.writes: list[Write] = []
        self.unexpected: list[tuple[int, str]] = []  # (status, body) of anything else
        self.missing_retry_after = 0

    def run(self) -> None:
        while not self.stop.is_set():
            write = Write(str(uuid.uuid4()), {"title": f"{self.name} #{len(self.writes)}"})
            self.writes.append(write)
            self.send_until_created(write)

    def send_until_created(self, write: Write) -> None:
        lose_answer = len(self.writes) % LOSE_EVERY == 0
        while True:
            try:
                # A lost answer: the client gives up at once. A request already in its view
                # goes on and commits (its retry is answered from the key); one the server
                # had not started yet is dropped with its client (Django under ASGI stops a
                # request whose client left), and its retry creates it. Once either way.
                response = self.send(write, read_timeout=0.001 if lose_answer else 30)
            except requests.RequestException:
                lose_answer = False
                write.answers.append((time.monotonic(), 0))  # no answer: retry
                time.sleep(0.5)
                continue
            write.answers.append((time.monotonic(), response.status_code))
            if response.status_code == 201:
                write.task_id = response.json()["id"]
                write.replayed = response.headers.get(REPLAYED) == "true"
                return
            if response.status_code == 409:  # the lost attempt is still running: retry shortly
                time.sleep(0.2)
                continue
            if response.status_code != 503:
                self.unexpected.append((response.status_code, response.text[:300]))
                return
            retry_after = response.headers.get("Retry-After", "")
            if not retry_after.isdigit():
                self.missing_retry_after += 1
            time.sleep(int(retry_after) if retry_after.isdigit() else 1)

    def send(self, write: Write, read_timeout: float = 30) -> requests.Response:
        return self.session.post(
            self.url,
            json=write.body,
            headers={"Idempotency-Key": write.key},
            timeout=(5, read_timeout),
        )


def access_log_statuses(world: World, since_line: int) -> Counter:
    """The statuses gunicorn logged after line ``since_line`` of the app's log: people's
    requests and the sidecar's callbacks alike (a job the app cannot run yet is a 503)."""
    lines = world.app.log_path.read_text(errors="replace").splitlines()[since_line:]
    request = re.compile(r'"[A-Z]+ \S+ HTTP/1\.[01]" (\d{3}) ')
    return Counter(int(m.group(1)) for line in lines if (m := request.search(line)))


def test_postgresql_down_for_10_s_during_a_write_burst_loses_and_doubles_nothing(
    world_ready: World,
) -> None:
    world = world_ready
    log_start = len(world.app.log_path.read_text(errors="replace").splitlines())
    stop = threading.Event()
    clients = [Client(world, f"pg-drill-{uuid.uuid4().hex[:6]}-{n}", stop) for n in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        time.sleep(BEFORE)
        world.database.cut()
        cut_at = time.monotonic()
        time.sleep(OUTAGE / 2)
        ready_during = requests.get(f"{world.app.url}/readyz", timeout=10).status_code
        time.sleep(OUTAGE / 2)
    finally:
        world.database.restore()
    restored_at = time.monotonic()
    time.sleep(AFTER)
    stop.set()
    for client in clients:
        client.join(timeout=60)
        assert not client.is_alive(), f"{client.name} is still retrying"

    writes = [write for client in clients for write in client.writes]
    answers = Counter(status for write in writes for _, status in write.answers)
    created = [w for w in writes if w.task_id is not None]
    first_201_after = min(
        at - restored_at
        for w in writes
        for at, status in w.answers
        if status == 201 and at > restored_at
    )
    # Answers that arrived while PostgreSQL was out of reach; a write that committed just
    # before the cut may be answered just after it (the answer leaves the server last), so
    # the first second is left out.
    during = [status for w in writes for at, status in w.answers if cut_at + 1.0 < at < restored_at]

    # Every retried write once more with its key: the stored answer, nothing new.
    retried = [w for w in created if w.retried]
    again = retried + random.sample(created, min(20, len(created)))
    for write in again:
        response = clients[0].send(write)
        assert response.status_code == 201, response.text
        assert response.headers.get(REPLAYED) == "true"
        assert response.json()["id"] == write.task_id

    titles = [w.body["title"] for w in writes]
    stored = Counter(
        dict(
            world.query(
                "SELECT title, count(*) FROM tasks_task WHERE title = ANY(%s) GROUP BY title",
                titles,
            )
        )
    )
    world.wait_until("the outbox is published", lambda: world.pending_events() == 0, 60)
    ids = {w.task_id for w in created}

    def task_created_delivered() -> set[int]:
        published = {
            p.event["id"]: p.event["data"]["task_id"]
            for p in list(world.sidecar.published)
            if p.topic == "task-events"
            and p.event.get("type", "").endswith("task.created.v1")
            and p.event["data"]["task_id"] in ids
        }
        return {
            published[d.event_id]
            for d in list(world.sidecar.deliveries)
            if d.event_id in published and d.outcome == SUCCESS
        }

    world.wait_until(
        "every created task's task.created is delivered",
        lambda: task_created_delivered() == ids,
        60,
    )
    ready_after = requests.get(f"{world.app.url}/readyz", timeout=10).status_code
    statuses = access_log_statuses(world, log_start)
    report(
        "postgresql-down",
        clients=CLIENTS,
        outage_seconds=restored_at - cut_at,
        writes=len(writes),
        acknowledged=len(created),
        answers_201=answers[201],
        answers_503=answers[503],
        no_answer=answers[0],
        answers_500=statuses[500],
        retried_writes=len(retried),
        answers_409=answers[409],
        lost_answers=sum(1 for w in writes if w.answers and w.answers[0][1] == 0),
        answered_from_key=sum(w.replayed for w in created),
        replays_checked=len(again),
        lost=sum(stored[w.body["title"]] == 0 for w in created),
        duplicated=sum(n - 1 for n in stored.values()),
        first_201_after_restore_seconds=first_201_after,
        readyz=f"{ready_during}->{ready_after}",
    )
    assert all(not client.unexpected for client in clients), [c.unexpected for c in clients]
    assert sum(c.missing_retry_after for c in clients) == 0  # every 503 said when to retry
    assert statuses[500] == 0  # never a 500 to anyone
    assert answers[503] > 0 and set(during) <= {0, 409, 503}  # the outage was seen, as 503s
    assert (ready_during, ready_after) == (503, 200)
    assert len(created) == len(writes)  # every write was acknowledged in the end
    lost_answers = [w for w in writes if w.answers and w.answers[0][1] == 0]
    assert lost_answers  # answers were lost; those writes, like every other ...
    assert all(stored[title] == 1 for title in titles)  # ... and exists exactly once
    assert first_201_after < RECOVERY_BOUND
