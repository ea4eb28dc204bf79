"""Drill: the sidecar is down while people write; nothing is lost or done twice once it is back.

Every write commits its task and its events (the outbox) in one transaction, so the API
answers 201 without the sidecar; the relay retries with backoff (capped at
OUTBOX_BACKOFF_MAX_SECONDS) and publishes the backlog once the sidecar answers again.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.drills.conftest import Stopwatch, World, report
from tests.events.test_topology import in_seconds, iso

pytestmark = [pytest.mark.slow, pytest.mark.drill]

WRITES = 2000
CLIENTS = 8  # concurrent API clients (gunicorn serves 2 workers x 4 threads)
TOPICS = {"task-events", "task-updates"}  # where a task.created is published (README)
DRAIN_BOUND = 90.0  # seconds from the sidecar's return to the last reminder job scheduled


def create_tasks(world: World, count: int, clients: int, remind_at: dt.datetime) -> list[int]:
    """``count`` tasks with a reminder, created through the API by ``clients`` at once."""
    local = threading.local()

    def create(n: int) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update(world.api.headers)
        response = local.session.post(
            f"{world.app.url}/api/tasks/",
            json={
                "title": f"Drill task {n}",
                "due_date": iso(remind_at + dt.timedelta(hours=1)),
                "remind_at": iso(remind_at),
            },
            timeout=30,
        )
        assert response.status_code == 201, (response.status_code, response.text[:300])
        return response.json()["id"]

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(create, range(count)))


def test_the_sidecar_down_for_2000_writes_loses_nothing_and_does_nothing_twice(
    world_ready: World,
) -> None:
    world = world_ready
    sidecar = world.sidecar
    remind_at = in_seconds(3600)
    sidecar.stop()
    try:
        writing = Stopwatch()
        task_ids = create_tasks(world, WRITES, CLIENTS, remind_at)
        write_seconds = writing()
        assert len(set(task_ids)) == WRITES  # every write was acknowledged (201)
        backlog = world.pending_events()
        assert backlog >= WRITES  # the events wait in the outbox
        ready_during = requests.get(f"{world.app.url}/readyz", timeout=10).status_code
    finally:
        sidecar.start()
    back = Stopwatch()

    jobs = {f"reminder-task-{task_id}" for task_id in task_ids}
    world.wait_until("the outbox is published", lambda: world.pending_events() == 0, 120)
    published_after = back()
    world.wait_until(
        "every task's reminder job is scheduled", lambda: jobs <= set(sidecar.jobs), 120
    )
    drain_seconds = back()
    ready_after = requests.get(f"{world.app.url}/readyz", timeout=10).status_code

    written = set(task_ids)
    created = [  # every publish of these tasks' task.created events, on every topic
        (p.topic, p.event["data"]["task_id"], p.event["id"])
        for p in list(sidecar.published)
        if p.event.get("type", "").endswith("task.created.v1")
        and p.event["data"]["task_id"] in written
    ]
    events_per_topic = Counter((topic, task_id) for topic, task_id, _ in set(created))
    lost = sum((topic, task_id) not in events_per_topic for topic in TOPICS for task_id in written)
    duplicate_publishes = len(created) - len({event_id for _, _, event_id in created})
    schedules = Counter(name for op, name, _ in list(sidecar.job_log) if op == "schedule")
    duplicate_jobs = sum(schedules[name] - 1 for name in jobs)
    [(deliveries, tasks_with_reminder)] = world.query(
        "SELECT count(*), count(DISTINCT task_id) FROM notifications_reminderdelivery"
        " WHERE task_id = ANY(%s)",
        task_ids,
    )
    report(
        "sidecar-down",
        writes=WRITES,
        write_seconds=write_seconds,
        backlog=backlog,
        lost_events=lost,
        duplicate_publishes=duplicate_publishes,
        duplicate_job_schedules=duplicate_jobs,
        published_after_seconds=published_after,
        drain_seconds=drain_seconds,
        readyz=f"{ready_during}->{ready_after}",
    )
    assert lost == 0  # every task's task.created on each of its topics
    assert set(events_per_topic.values()) == {1}  # one event per task and topic, not two
    assert duplicate_publishes == 0
    assert (deliveries, tasks_with_reminder) == (WRITES, WRITES)  # one reminder each
    assert duplicate_jobs == 0
    assert drain_seconds < DRAIN_BOUND
    assert (ready_during, ready_after) == (503, 200)  # out of the Service while it is down
