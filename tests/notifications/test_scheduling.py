"""The notification consumer keeps each task's one-shot job in step, through the stand-in
sidecar's Jobs API (real HTTP both ways: the relay publishes, daprd delivers task-events to
the app, the app schedules or deletes ``reminder-task-<id>`` on its own sidecar)."""

from __future__ import annotations

import datetime as dt

from django.utils.dateparse import parse_datetime

from events.dispatch import retry_consumer_failures
from events.models import ConsumerFailure
from events.relay import relay_pending
from notifications.models import DeliveryState
from tasks.models import Task
from tests.notifications.helpers import RFC3339, deliveries, iso, reminder_job, soon
from tests.support.fake_dapr import SUCCESS


def create(api, **fields) -> dict:
    fields.setdefault("title", "Pay the rent")
    response = api.post("/api/tasks/", fields, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_creating_a_task_with_a_reminder_schedules_its_job(api, dapr):
    remind_at = soon(hours=1)
    task = create(api, due_date=iso(soon(hours=2)), remind_at=iso(remind_at))
    name = reminder_job(task["id"])
    assert dapr.job(name) is None  # nothing happens inside the request

    outcomes = dapr.pump()

    assert ("task-events", "com.tideline.task.created.v1", SUCCESS) in outcomes
    [request] = dapr.schedules(name)
    assert request == {
        "dueTime": iso(remind_at),
        "data": {"task_id": task["id"], "remind_at": iso(remind_at)},
        "overwrite": True,
    }
    assert RFC3339.match(request["dueTime"])
    assert parse_datetime(request["dueTime"]) == remind_at
    assert dapr.job(name) == {
        "name": name,
        "dueTime": iso(remind_at),
        "data": {"task_id": task["id"], "remind_at": iso(remind_at)},
    }
    [row] = deliveries(task["id"])
    assert (row.remind_at, row.state) == (remind_at, DeliveryState.SCHEDULED)


def test_a_task_without_a_reminder_schedules_nothing(api, dapr):
    task = create(api, due_date=iso(soon(hours=2)))

    dapr.pump()

    assert dapr.schedules(reminder_job(task["id"])) == []
    assert deliveries(task["id"]) == []


def test_the_jobs_path_prefix_is_configurable_for_older_sidecars(api, dapr, settings):
    dapr.sidecar.runtime_version = "1.16"  # serves only /v1.0-alpha1/jobs
    settings.DAPR_JOBS_API_PREFIX = "v1.0-alpha1"  # daprd 1.14-1.17
    remind_at = soon(hours=1)
    task = create(api, due_date=iso(soon(hours=2)), remind_at=iso(remind_at))

    dapr.pump()

    assert dapr.job(reminder_job(task["id"]))["dueTime"] == iso(remind_at)


def test_changing_remind_at_reschedules_the_job(api, dapr):
    task = create(api, due_date=iso(soon(hours=3)), remind_at=iso(soon(hours=1)))
    dapr.pump()
    later = soon(hours=2)

    response = api.patch(f"/api/tasks/{task['id']}/", {"remind_at": iso(later)}, format="json")
    assert response.status_code == 200
    dapr.pump()

    name = reminder_job(task["id"])
    first, second = dapr.schedules(name)
    assert second["dueTime"] == iso(later) != first["dueTime"]
    assert second["data"] == {"task_id": task["id"], "remind_at": iso(later)}
    assert second["overwrite"] is True
    assert dapr.job(name)["dueTime"] == iso(later)
    states = [(d.remind_at, d.state) for d in deliveries(task["id"])]
    assert states[-1] == (later, DeliveryState.SCHEDULED)
    assert states[0][1] == DeliveryState.SKIPPED  # the old time is superseded


def test_changing_the_due_date_reschedules_a_relative_reminder(api, dapr):
    due = soon(days=2)
    task = create(api, due_date=iso(due), timezone="Europe/Paris", remind_before="00:30:00")
    dapr.pump()
    new_due = soon(days=3)

    response = api.patch(f"/api/tasks/{task['id']}/", {"due_date": iso(new_due)}, format="json")
    assert response.status_code == 200
    dapr.pump()

    first, second = dapr.schedules(reminder_job(task["id"]))
    assert parse_datetime(first["dueTime"]) == due - dt.timedelta(minutes=30)
    assert parse_datetime(second["dueTime"]) == new_due - dt.timedelta(minutes=30)
    assert second["dueTime"] == iso(Task.objects.get(pk=task["id"]).remind_at)


def test_completing_the_task_deletes_the_job(api, dapr):
    task = create(api, due_date=iso(soon(hours=2)), remind_at=iso(soon(hours=1)))
    dapr.pump()
    name = reminder_job(task["id"])
    assert dapr.job(name) is not None

    assert api.post(f"/api/tasks/{task['id']}/complete/").status_code == 200
    outcomes = dapr.pump()

    assert ("task-events", "com.tideline.task.completed.v1", SUCCESS) in outcomes
    assert dapr.deletes(name) == 1
    assert dapr.job(name) is None
    assert [d.state for d in deliveries(task["id"])] == [DeliveryState.SKIPPED]


def test_deleting_the_task_deletes_the_job(api, dapr):
    task = create(api, due_date=iso(soon(hours=2)), remind_at=iso(soon(hours=1)))
    dapr.pump()
    name = reminder_job(task["id"])

    assert api.delete(f"/api/tasks/{task['id']}/").status_code == 204
    outcomes = dapr.pump()

    assert ("task-events", "com.tideline.task.deleted.v1", SUCCESS) in outcomes
    assert dapr.deletes(name) == 1
    assert dapr.job(name) is None


def test_clearing_the_reminder_deletes_the_job(api, dapr):
    task = create(api, due_date=iso(soon(hours=2)), remind_at=iso(soon(hours=1)))
    dapr.pump()
    name = reminder_job(task["id"])

    response = api.patch(f"/api/tasks/{task['id']}/", {"remind_at": None}, format="json")
    assert response.status_code == 200
    dapr.pump()

    assert dapr.deletes(name) == 1
    assert dapr.job(name) is None
    assert [d.state for d in deliveries(task["id"])] == [DeliveryState.SKIPPED]


def test_an_update_that_touches_no_reminder_field_leaves_the_job_alone(api, dapr):
    task = create(api, due_date=iso(soon(hours=2)), remind_at=iso(soon(hours=1)))
    dapr.pump()
    calls_before = list(dapr.job_calls())

    response = api.patch(
        f"/api/tasks/{task['id']}/",
        {"title": "Pay the rent (and the bills)", "priority": "high", "tags": ["money"]},
        format="json",
    )
    assert response.status_code == 200
    outcomes = dapr.pump()

    # The consumer did get the task.updated event, and answered it without a Jobs call.
    assert ("task-events", "com.tideline.task.updated.v1", SUCCESS) in outcomes
    assert dapr.job_calls() == calls_before


def test_a_failing_jobs_call_is_held_and_the_apps_retry_schedules_the_job(api, sidecar):
    """``sidecar`` is the events tests' stand-in (no tokens); here it delivers by hand."""
    remind_at = soon(hours=1)
    task = create(api, due_date=iso(soon(hours=2)), remind_at=iso(remind_at))
    relay_pending()  # published to the sidecar while it is up
    [created] = [e for e in sidecar.events("task-events") if e["data"]["task_id"] == task["id"]]
    name = reminder_job(task["id"])

    sidecar.stop()  # the app's own sidecar (and so its Jobs API) is down
    outcome = sidecar.deliver("task-events", created)  # daprd still holds the message

    assert outcome == SUCCESS  # acknowledged: the app holds the event, the partition goes on
    assert sidecar.deliveries[-1].http_status == 200
    assert name not in sidecar.jobs
    held = ConsumerFailure.objects.get(event_id=created["id"])
    assert (held.consumer, held.state) == ("notifications.reminder-job-sync", "retrying")

    sidecar.start()  # back on the same port; the app's retry pass runs the held event
    retry_consumer_failures(now=held.next_attempt_at)

    assert not ConsumerFailure.objects.exists()
    assert sidecar.jobs[name]["dueTime"] == iso(remind_at)
    assert sidecar.jobs[name]["data"] == {"task_id": task["id"], "remind_at": iso(remind_at)}
    assert [d.state for d in deliveries(task["id"])] == [DeliveryState.SCHEDULED]
    assert Task.objects.get(pk=task["id"]).reminder_sent is False
