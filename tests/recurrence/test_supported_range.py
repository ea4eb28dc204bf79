"""One supported range of date-times, years 1000 to 9000 in UTC, applies everywhere.

A date-time typed as local time is checked once it is an instant (UTC), so a task
accepted once can always be edited and completed; a series ends at the range's end as if
its UNTIL said so (an UNTIL past it is read as the end), so it never runs off the
calendar: its occurrences stop, and completing its last instance spawns nothing.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from events.relay import relay_pending
from recurrence.models import RecurrenceSeries
from tasks.models import Task
from todo_project.timezones import SUPPORTED_END, SUPPORTED_START

pytestmark = pytest.mark.django_db

TOKYO = "Asia/Tokyo"
FAR_WEST = "Etc/GMT+12"  # UTC-12
FAR_EAST = "Etc/GMT-14"  # UTC+14 (Pacific/Kiritimati is, since 1995)


@pytest.fixture
def api(alice) -> APIClient:
    """Alice's API client (signed in directly: these tests are not about tokens)."""
    client = APIClient()
    client.force_authenticate(alice)
    return client


def create(api, **fields):
    return api.post("/api/tasks/", {"title": "At the edge", **fields}, format="json")


def occurrences(api, task_id: int, count: int = 5) -> list[str]:
    response = api.get(f"/api/tasks/{task_id}/occurrences/", {"count": count})
    assert response.status_code == 200, response.content
    return response.json()["occurrences"]


def complete_and_relay(api, task_id: int) -> Task | None:
    """Complete through the API, deliver the events, return the instance spawned (if any)."""
    response = api.post(f"/api/tasks/{task_id}/complete/")
    assert response.status_code == 200, response.content
    relay_pending()
    return Task.objects.filter(parent_id=task_id).first()


# --- writes: the range is checked on the instant ----------------------------------------


@pytest.mark.parametrize(
    ("due", "zone"),
    [
        ("9000-12-31T23:00:00", FAR_WEST),  # 9001-01-01 11:00 UTC
        ("9000-12-31T23:00:00-12:00", "UTC"),
        ("1000-01-01T10:00:00", FAR_EAST),  # 0999-12-31 20:00 UTC
    ],
)
def test_a_due_date_outside_the_range_in_utc_is_a_400_naming_due_date(api, due, zone):
    response = create(api, due_date=due, timezone=zone)

    assert response.status_code == 400
    assert response.json()["due_date"] == ["Enter a date between the years 1000 and 9000."]
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("due", "zone"),
    [
        ("9000-12-31T11:00:00", FAR_WEST),  # 9000-12-31 23:00 UTC
        ("9001-01-01T08:59:00", TOKYO),  # 9001 locally, 9000-12-31 23:59 UTC
        ("1000-01-01T00:30:00", FAR_WEST),  # 12:30 UTC
        ("1000-01-01T14:30:00", FAR_EAST),  # 00:30 UTC
    ],
)
def test_a_task_due_at_either_end_can_be_edited_and_completed(api, due, zone):
    created = create(api, due_date=due, timezone=zone)
    assert created.status_code == 201, created.content
    task_id = created.json()["id"]

    renamed = api.patch(f"/api/tasks/{task_id}/", {"title": "Renamed"}, format="json")
    completed = api.post(f"/api/tasks/{task_id}/complete/")
    reopened = api.post(f"/api/tasks/{task_id}/reopen/")

    assert (renamed.status_code, completed.status_code, reopened.status_code) == (200, 200, 200)


def test_a_reminder_outside_the_range_in_utc_is_a_400_naming_remind_at(api):
    response = create(
        api,
        due_date="9000-12-31T10:00:00",
        remind_at="9000-12-31T23:30:00",
        timezone=FAR_WEST,
    )

    assert response.status_code == 400
    assert "remind_at" in response.json()


@pytest.mark.parametrize(
    "query",
    [
        "due_before=9001-01-01",
        "due_after=0999-12-31",
        "due_before=9000-12-31T23:00:00-12:00",
        "due_after=1000-01-01T00:30:00%2B14:00",
    ],
)
def test_a_filter_outside_the_range_is_a_400_in_the_same_words(api, query):
    response = api.get(f"/api/tasks/?{query}")

    assert response.status_code == 400
    assert response.json()[query.split("=")[0]] == ["Enter a date between the years 1000 and 9000."]


@pytest.mark.parametrize("query", ["due_before=9000-12-31", "due_after=1000-01-01"])
def test_a_filter_at_the_ends_of_the_range_works(api, query):
    assert api.get(f"/api/tasks/?{query}").status_code == 200


# --- series: they end at the range's end ------------------------------------------------


def test_the_issues_series_until_the_end_of_the_calendar_can_be_listed_and_completed(api):
    created = create(
        api,
        due_date="2030-01-07T09:00:00",
        timezone=TOKYO,
        recurrence_rule="FREQ=DAILY;UNTIL=99991231T235959Z",
    )
    assert created.status_code == 201, created.content

    listed = occurrences(api, created.json()["id"], count=3)
    spawned = complete_and_relay(api, created.json()["id"])

    assert listed == [
        "2030-01-07T09:00:00+09:00",
        "2030-01-08T09:00:00+09:00",
        "2030-01-09T09:00:00+09:00",
    ]
    assert spawned is not None
    assert spawned.due_date == dt.datetime(2030, 1, 8, 0, tzinfo=dt.UTC)


def test_a_series_stops_at_the_end_of_the_range_and_its_last_instance_spawns_nothing(api):
    created = create(
        api, due_date="9001-01-01T07:00:00", timezone=TOKYO, recurrence_rule="FREQ=HOURLY"
    )
    assert created.status_code == 201, created.content
    task_id = created.json()["id"]

    listed = occurrences(api, task_id, count=5)
    last = complete_and_relay(api, task_id)
    after_last = complete_and_relay(api, last.pk)

    # 08:00 in Tokyo is 23:00 UTC on 31 December 9000: the range's last whole hour.
    assert listed == ["9001-01-01T07:00:00+09:00", "9001-01-01T08:00:00+09:00"]
    assert last.due_date == dt.datetime(9000, 12, 31, 23, tzinfo=dt.UTC)
    assert after_last is None
    assert RecurrenceSeries.objects.get(pk=last.series_id).ended


def test_an_until_past_the_range_lists_up_to_its_end_only(api):
    created = create(
        api,
        due_date="9000-12-29T09:00:00",
        timezone=FAR_EAST,
        recurrence_rule="FREQ=DAILY;UNTIL=99991231T235959Z",
    )
    assert created.status_code == 201, created.content

    listed = occurrences(api, created.json()["id"], count=10)

    assert listed == [
        "9000-12-29T09:00:00+14:00",
        "9000-12-30T09:00:00+14:00",
        "9000-12-31T09:00:00+14:00",
        "9001-01-01T09:00:00+14:00",  # 9000-12-31 19:00 UTC
    ]


def test_a_stored_until_before_the_range_does_not_break_the_task(api, alice, make_task):
    """Rows are not all validated today: an old one may say UNTIL=00010101T000000Z."""
    task = make_task(
        alice,
        due_date=dt.datetime(1000, 1, 2, 9, tzinfo=zoneinfo.ZoneInfo(FAR_WEST)),
        timezone=FAR_WEST,
        recurrence_rule="FREQ=DAILY",
    )
    Task.objects.filter(pk=task.pk).update(recurrence_rule="FREQ=DAILY;UNTIL=00010101T000000Z")
    RecurrenceSeries.objects.filter(pk=task.series_id).update(
        rule="FREQ=DAILY;UNTIL=00010101T000000Z"
    )

    assert occurrences(api, task.pk) == ["1000-01-02T09:00:00-12:00"]
    assert complete_and_relay(api, task.pk) is None
    assert RecurrenceSeries.objects.get(pk=task.series_id).ended


# --- generated: whatever is created can be edited, listed and completed -----------------

ZONES = [
    "UTC",
    TOKYO,
    FAR_WEST,
    FAR_EAST,
    "Pacific/Kiritimati",
    "America/New_York",
    "Australia/Lord_Howe",
]
RULES = [
    "FREQ=HOURLY",
    "FREQ=DAILY",
    "FREQ=WEEKLY;BYDAY=MO,FR",
    "FREQ=MONTHLY;BYMONTHDAY=-1",
    "FREQ=YEARLY",
    "FREQ=DAILY;COUNT=3",
    "FREQ=DAILY;UNTIL=99991231T235959Z",
    "FREQ=DAILY;UNTIL=90001231T235959Z",
    "FREQ=MINUTELY;INTERVAL=720",
]
_EDGES = st.one_of(
    st.datetimes(dt.datetime(9000, 12, 29), dt.datetime(9001, 1, 1, 14)),
    st.datetimes(dt.datetime(999, 12, 31, 10), dt.datetime(1000, 1, 3)),
)


@pytest.mark.slow
@settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    due=_EDGES.map(lambda moment: moment.replace(second=0, microsecond=0)),
    zone=st.sampled_from(ZONES),
    rule=st.sampled_from(RULES),
    mode=st.sampled_from(["schedule", "completion"]),
)
def test_a_task_created_near_either_end_can_always_be_edited_listed_and_completed(
    api, due, zone, rule, mode
):
    created = create(
        api,
        due_date=due.isoformat(),
        timezone=zone,
        recurrence_rule=rule,
        recurrence_mode=mode,
    )
    assert created.status_code in (201, 400), created.content
    if created.status_code == 400:
        assert set(created.json()) <= {"due_date", "recurrence_rule"}
        return
    task_id = created.json()["id"]

    renamed = api.patch(f"/api/tasks/{task_id}/", {"title": "Renamed"}, format="json")
    assert renamed.status_code == 200, renamed.content
    assert occurrences(api, task_id)
    spawned = complete_and_relay(api, task_id)

    series = RecurrenceSeries.objects.get(pk=Task.objects.get(pk=task_id).series_id)
    if spawned is None:
        assert series.ended  # the consumer ran: the series ended rather than failing
    else:
        assert SUPPORTED_START <= spawned.due_date <= SUPPORTED_END
        assert api.post(f"/api/tasks/{spawned.pk}/complete/").status_code == 200
