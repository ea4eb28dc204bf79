"""The write path's cost: a create or a completion runs a fixed, small number of statements,
and the task a service returns is exactly what reading it again would give (its tags loaded,
so neither the event nor the API's answer reads them again)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from events import background
from events.background import RELAY_IDLE_WAIT_SECONDS, BackgroundWorker, SchedulerLock
from events.payloads import task_data
from tasks import services
from tasks.api.serializers import TaskSerializer
from tasks.models import Task
from tests.factories import make_category, make_tag, make_task

#: services.task_create with two existing tags: the service's atomic block (a savepoint in
#: a test's transaction: SAVEPOINT and RELEASE, BEGIN and COMMIT on its own), the profile's
#: time zone, INSERT the task, SELECT the tags by lower(name), INSERT the two links, INSERT
#: the outbox rows. (Raw SQL needs 6: the profile read aside, the same statements.)
CREATE_WITH_TWO_TAGS_STATEMENTS = 7
#: The issue's goal for that create.
CREATE_GOAL = 8
#: services.task_complete of a recurring task: its atomic block (2), the task locked and read
#: with its series and category, its tags, one UPDATE of the changed columns, the outbox rows.
COMPLETE_RECURRING_STATEMENTS = 6


@pytest.fixture
def tagged(alice):
    make_tag(alice, "Work")
    make_tag(alice, "home")
    services.profile_get(user=alice)  # the profile exists, as for every user of the API
    return get_user_model().objects.get(pk=alice.pk)  # as authentication reads it


def test_creating_a_task_with_two_tags_runs_seven_statements(tagged, django_assert_num_queries):
    with django_assert_num_queries(CREATE_WITH_TWO_TAGS_STATEMENTS) as captured:
        task = services.task_create(user=tagged, title="Pay rent", tags=["work", "HOME"])

    assert len(captured.captured_queries) <= CREATE_GOAL
    assert task.tag_names() == ["home", "Work"]
    assert sorted(Task.objects.get(pk=task.pk).tags.values_list("name", flat=True)) == [
        "Work",
        "home",
    ]


def test_creating_a_task_with_two_tags_and_a_time_zone_reads_no_profile(
    tagged, django_assert_num_queries
):
    with django_assert_num_queries(CREATE_WITH_TWO_TAGS_STATEMENTS - 1):
        services.task_create(
            user=tagged, title="Call", tags=["work", "home"], timezone_name="Asia/Tokyo"
        )


def test_a_lazy_user_of_a_page_request_creates_in_its_profile_time_zone(tagged):
    services.profile_update(user=tagged, data={"timezone": "Asia/Tokyo"})
    user = SimpleLazyObject(lambda: get_user_model().objects.get(pk=tagged.pk))

    task = services.task_create(user=user, title="From a page", tags=["work"])

    assert (task.timezone, task.tag_names()) == ("Asia/Tokyo", ["Work"])


def test_completing_a_recurring_task_runs_six_statements(tagged, django_assert_num_queries):
    task = make_task(
        tagged,
        title="Water the plants",
        tags=["work", "home"],
        recurrence_type="daily",
        due_date=dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC),
    )
    task = Task.objects.get(pk=task.pk)  # as a view hands it over: nothing cached

    with django_assert_num_queries(COMPLETE_RECURRING_STATEMENTS):
        completed = services.task_complete(task=task)

    stored = Task.objects.get(pk=task.pk)
    assert stored.completed and stored.completed_at == completed.completed_at
    assert stored.next_occurrence_at == dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


#: services.task_spawn_next, the next instance of a completed daily task with two tags: its
#: atomic block (2); the completed task locked with its series, category and user; its spawn
#: looked for; its series locked; its tags; the clash's savepoint (2); INSERT the instance,
#: its tags by lower(name), INSERT their links and its event; the series' count; the
#: completed task's last_triggered_at and its event.
SPAWN_STATEMENTS = 15


def test_spawning_the_next_instance_runs_fifteen_statements(tagged, django_assert_num_queries):
    task = make_task(
        tagged,
        tags=["work", "home"],
        recurrence_type="daily",
        due_date=dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC),
    )
    task = services.task_complete(task=Task.objects.get(pk=task.pk))

    with django_assert_num_queries(SPAWN_STATEMENTS):
        instance = services.task_spawn_next(task_id=task.pk, next_due=task.next_occurrence_at)

    assert instance.due_date == dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    assert instance.tag_names() == ["home", "Work"]
    _same_as_read_again(instance)


def test_an_edit_writes_only_the_columns_it_changed(tagged):
    task = make_task(tagged, title="Old title", description="kept")
    stale = Task.objects.get(pk=task.pk)
    Task.objects.filter(pk=task.pk).update(description="changed meanwhile")

    services.task_update(task=stale, data={"title": "New title"})

    stored = Task.objects.get(pk=task.pk)
    assert (stored.title, stored.description) == ("New title", "changed meanwhile")


#: services.task_update swapping a tag for another existing one: its atomic block (2), the
#: locked read, the tags, the new tags by lower(name), DELETE and INSERT of links, the
#: UPDATE of updated_at, the outbox rows.
SWAP_A_TAG_STATEMENTS = 9


def test_swapping_a_tag_reads_the_links_once(tagged, django_assert_num_queries):
    task = make_task(tagged, tags=["work"])

    with django_assert_num_queries(SWAP_A_TAG_STATEMENTS):
        _, changes = services.task_update(task=task, data={"tags": ["home"]})

    assert changes["tags"].new == ["home"]
    assert list(Task.objects.get(pk=task.pk).tags.values_list("name", flat=True)) == ["home"]


def test_an_edit_of_the_title_updates_the_title_alone(tagged, django_assert_num_queries):
    task = make_task(tagged, recurrence_type="weekly", due_date=dt.datetime(2026, 5, 4, 9))

    with django_assert_num_queries(6) as captured:
        services.task_update(task=task, data={"title": "Renamed"})

    (update,) = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    assert '"title"' in update and '"updated_at"' in update
    assert '"series_id"' not in update and '"completed"' not in update


# --- the returned task is the stored task ------------------------------------------------

VARIED_TASKS = [
    pytest.param({}, id="bare"),
    pytest.param({"tags": ["Zeta", "alpha", "Émile", "beta-2", "ALPHA"]}, id="tags-cases"),
    pytest.param(
        {
            "due_date": dt.datetime(2026, 7, 1, 18, 30),
            "timezone": "America/New_York",
            "remind_before": dt.timedelta(hours=2),
            "tags": ["errands"],
            "priority": "urgent",
        },
        id="new-york-reminder-offset",
    ),
    pytest.param(
        {
            "due_date": dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC),
            "timezone": "Asia/Kolkata",
            "remind_at": dt.datetime(2026, 11, 1, 20, 0),
            "recurrence_rule": "FREQ=WEEKLY;BYDAY=MO,FR;COUNT=5",
            "description": "every week",
        },
        id="kolkata-rule",
    ),
    pytest.param(
        {"recurrence_type": "monthly", "recurrence_interval": 2, "completed": True},
        id="completed-no-due-date",
    ),
    pytest.param({"category": "Work", "tags": ["home"]}, id="category"),
]


def _given(user, fields: dict) -> dict:
    fields = dict(fields)
    if "category" in fields:
        fields["category"] = make_category(user, fields["category"])
    return fields


def _same_as_read_again(task: Task) -> None:
    stored = Task.objects.with_relations().get(pk=task.pk)
    assert TaskSerializer(task).data == TaskSerializer(stored).data
    assert task_data(task) == task_data(stored)


@pytest.mark.parametrize("fields", VARIED_TASKS)
def test_a_created_task_is_what_reading_it_again_gives(alice, fields):
    services.profile_update(user=alice, data={"timezone": "Europe/Paris"})
    make_tag(alice, "home")

    task = make_task(alice, title="Varied", **_given(alice, fields))

    _same_as_read_again(task)


@pytest.mark.parametrize("fields", VARIED_TASKS)
@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"completed": True}, id="complete"),
        pytest.param({"title": "Renamed", "tags": ["new one", "Home"]}, id="title-and-tags"),
        pytest.param(
            {"due_date": dt.datetime(2027, 1, 5, 8, 0), "timezone": "Australia/Sydney"},
            id="moved",
        ),
        pytest.param({"tags": []}, id="untagged"),
    ],
)
def test_an_updated_task_is_what_reading_it_again_gives(alice, fields, change):
    make_tag(alice, "home")
    task = make_task(alice, title="Varied", **_given(alice, fields))

    updated, _ = services.task_update(task=Task.objects.get(pk=task.pk), data=change)

    _same_as_read_again(updated)


# --- the embedded relay stays off the requests' path -------------------------------------


@pytest.fixture
def relay_calls(settings, tmp_path, monkeypatch):
    """A started worker whose relay records its calls (another process is the scheduler)."""
    settings.VAR_DIR = tmp_path
    other_process = SchedulerLock(str(tmp_path / "scheduler.lock"))
    assert other_process.acquire()
    calls: list[float] = []
    relayed = threading.Event()

    def relay_pending():
        calls.append(timezone.now().timestamp())
        relayed.set()

    monkeypatch.setattr("events.relay.relay_pending", relay_pending)
    worker = BackgroundWorker()
    monkeypatch.setattr(background, "worker", worker)
    worker.start()
    try:
        yield worker, calls, relayed
    finally:
        worker.stop(timeout=10)
        other_process.release()


def test_a_kicked_relay_waits_until_the_request_in_flight_is_answered(relay_calls):
    worker, calls, relayed = relay_calls
    worker.requests.started()  # the request whose commit kicks

    worker.kick()
    assert not relayed.wait(RELAY_IDLE_WAIT_SECONDS / 5)
    worker.requests.finished()

    assert relayed.wait(RELAY_IDLE_WAIT_SECONDS)
    assert len(calls) == 1


def test_a_kicked_relay_waits_a_bounded_time_for_a_busy_process(relay_calls):
    worker, calls, relayed = relay_calls
    worker.requests.started()  # requests keep coming: the process is never idle
    kicked = timezone.now().timestamp()

    worker.kick()

    assert relayed.wait(RELAY_IDLE_WAIT_SECONDS * 8)
    assert calls[0] - kicked >= RELAY_IDLE_WAIT_SECONDS * 0.9
    worker.requests.finished()


def test_an_idle_process_relays_at_once(relay_calls):
    worker, _, relayed = relay_calls

    worker.kick()

    assert relayed.wait(RELAY_IDLE_WAIT_SECONDS / 2)


def test_an_open_live_stream_does_not_keep_the_process_busy(relay_calls):
    worker, _, relayed = relay_calls
    worker.requests.started()  # an open page's /live/ stream, held for minutes
    worker.requests.stream_opened()

    worker.kick()

    assert relayed.wait(RELAY_IDLE_WAIT_SECONDS / 2)  # at once, as if idle
    worker.requests.stream_closed()
    worker.requests.finished()
    assert worker.requests.idle.is_set()
