"""RFC 5545 section 3.8.5.3's own examples, spawned instance after instance.

Every example starts at ``DTSTART;TZID=America/New_York``: the first task is due then, each
instance is completed through ``tasks.services.task_complete``, the outbox is relayed
in-process to the recurrence consumer, and the spawned instance's due date is read back as
local wall-clock time. Every due date must be the RFC's, at the RFC's local time, with the
UTC offset of that day (-04:00 before Sunday 26 October 1997, -05:00 after it).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from events.relay import relay_pending
from recurrence.models import RecurrenceSeries
from tasks.models import Task
from tests.recurrence.helpers import (
    NEW_YORK,
    at,
    follow_series,
    wall_clock,
)

ZONE = zoneinfo.ZoneInfo(NEW_YORK)


def every(first: str, last: str, *, days: int) -> list[str]:
    """Dates from ``first`` to ``last`` inclusive, ``days`` apart (RFC: "Sep 2 .. Dec 23")."""
    day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    found = []
    while day <= end:
        found.append(day.isoformat())
        day += dt.timedelta(days=days)
    return found


def in_month(year: int, month: int, *days: int) -> list[str]:
    return [dt.date(year, month, day).isoformat() for day in days]


def as_local(stamps: list[str]) -> list[str]:
    """The RFC's wall-clock times in New York, with the UTC offset of each day."""
    return [moment.replace(tzinfo=ZONE).isoformat() for moment in wall_clock(stamps)]


# (rule, DTSTART, the RFC's occurrences, bounded: the RFC's list is the whole series)
RFC_EXAMPLES = {
    "daily-10-occurrences": (
        "FREQ=DAILY;COUNT=10",
        "1997-09-02",
        in_month(1997, 9, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
        True,
    ),
    "daily-until-december-24": (
        "FREQ=DAILY;UNTIL=19971224T000000Z",
        "1997-09-02",
        every("1997-09-02", "1997-12-23", days=1),
        True,
    ),
    "every-other-day-forever": (
        "FREQ=DAILY;INTERVAL=2",
        "1997-09-02",
        in_month(1997, 9, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20),
        False,
    ),
    "every-10-days-5-occurrences": (
        "FREQ=DAILY;INTERVAL=10;COUNT=5",
        "1997-09-02",
        [*in_month(1997, 9, 2, 12, 22), *in_month(1997, 10, 2, 12)],
        True,
    ),
    "weekly-10-occurrences": (
        "FREQ=WEEKLY;COUNT=10",
        "1997-09-02",
        [
            *in_month(1997, 9, 2, 9, 16, 23, 30),
            *in_month(1997, 10, 7, 14, 21, 28),
            *in_month(1997, 11, 4),
        ],
        True,
    ),
    "weekly-until-december-24": (
        "FREQ=WEEKLY;UNTIL=19971224T000000Z",
        "1997-09-02",
        every("1997-09-02", "1997-12-23", days=7),
        True,
    ),
    "every-other-week-mo-we-fr-until-december-24": (
        "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
        "1997-09-01",
        [
            *in_month(1997, 9, 1, 3, 5, 15, 17, 19, 29),
            *in_month(1997, 10, 1, 3, 13, 15, 17, 27, 29, 31),
            *in_month(1997, 11, 10, 12, 14, 24, 26, 28),
            *in_month(1997, 12, 8, 10, 12, 22),
        ],
        True,
    ),
    "weekly-tu-th-10-occurrences": (
        "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH",
        "1997-09-02",
        [*in_month(1997, 9, 2, 4, 9, 11, 16, 18, 23, 25, 30), *in_month(1997, 10, 2)],
        True,
    ),
    "every-other-week-tu-th-8-occurrences": (
        "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH",
        "1997-09-02",
        [*in_month(1997, 9, 2, 4, 16, 18, 30), *in_month(1997, 10, 2, 14, 16)],
        True,
    ),
    "monthly-first-friday-10-occurrences": (
        "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        "1997-09-05",
        [
            "1997-09-05",
            "1997-10-03",
            "1997-11-07",
            "1997-12-05",
            "1998-01-02",
            "1998-02-06",
            "1998-03-06",
            "1998-04-03",
            "1998-05-01",
            "1998-06-05",
        ],
        True,
    ),
    "monthly-second-to-last-monday-6-occurrences": (
        "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
        "1997-09-22",
        ["1997-09-22", "1997-10-20", "1997-11-17", "1997-12-22", "1998-01-19", "1998-02-16"],
        True,
    ),
    "monthly-third-to-last-day-forever": (
        "FREQ=MONTHLY;BYMONTHDAY=-3",
        "1997-09-28",
        ["1997-09-28", "1997-10-29", "1997-11-28", "1997-12-29", "1998-01-29", "1998-02-26"],
        False,
    ),
    "monthly-2nd-and-15th-10-occurrences": (
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
        "1997-09-02",
        [
            *in_month(1997, 9, 2, 15),
            *in_month(1997, 10, 2, 15),
            *in_month(1997, 11, 2, 15),
            *in_month(1997, 12, 2, 15),
            *in_month(1998, 1, 2, 15),
        ],
        True,
    ),
    "monthly-first-and-last-day-10-occurrences": (
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
        "1997-09-30",
        [
            "1997-09-30",
            *in_month(1997, 10, 1, 31),
            *in_month(1997, 11, 1, 30),
            *in_month(1997, 12, 1, 31),
            *in_month(1998, 1, 1, 31),
            "1998-02-01",
        ],
        True,
    ),
    "yearly-june-and-july-10-occurrences": (
        "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
        "1997-06-10",
        [f"{year}-{month:02d}-10" for year in range(1997, 2002) for month in (6, 7)],
        True,
    ),
    "every-third-year-days-1-100-200-10-occurrences": (
        "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
        "1997-01-01",
        [
            *("1997-01-01", "1997-04-10", "1997-07-19"),
            *("2000-01-01", "2000-04-09", "2000-07-18"),
            *("2003-01-01", "2003-04-10", "2003-07-19"),
            "2006-01-01",
        ],
        True,
    ),
    "third-tu-we-th-of-the-month-3-occurrences": (
        "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
        "1997-09-04",
        ["1997-09-04", "1997-10-07", "1997-11-06"],
        True,
    ),
    "second-to-last-weekday-of-the-month-forever": (
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
        "1997-09-29",
        [
            "1997-09-29",
            "1997-10-30",
            "1997-11-27",
            "1997-12-30",
            "1998-01-29",
            "1998-02-26",
            "1998-03-30",
        ],
        False,
    ),
    "every-15-minutes-6-occurrences": (
        "FREQ=MINUTELY;INTERVAL=15;COUNT=6",
        "1997-09-02 09:00",
        [f"1997-09-02 {time}" for time in ("09:00", "09:15", "09:30", "09:45", "10:00", "10:15")],
        True,
    ),
    "every-90-minutes-4-occurrences": (
        "FREQ=MINUTELY;INTERVAL=90;COUNT=4",
        "1997-09-02 09:00",
        [f"1997-09-02 {time}" for time in ("09:00", "10:30", "12:00", "13:30")],
        True,
    ),
    "every-tuesday-every-other-month-forever": (
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU",
        "1997-09-02",
        [*in_month(1997, 9, 2, 9, 16, 23, 30), *in_month(1997, 11, 4, 11, 18, 25), "1998-01-06"],
        False,
    ),
    "friday-the-13th-dtstart-counts-first": (
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        "1997-09-02",
        ["1997-09-02", "1998-02-13", "1998-03-13", "1998-11-13", "1999-08-13", "2000-10-13"],
        False,
    ),
}


@pytest.fixture
def start_series(alice, make_task):
    def start(rule: str, dtstart: str) -> Task:
        return make_task(
            alice,
            title="RFC 5545 example",
            due_date=at(dtstart).replace(tzinfo=None),  # wall-clock time in the task's zone
            timezone=NEW_YORK,
            recurrence_rule=rule,
        )

    return start


@pytest.mark.parametrize(
    ("rule", "dtstart", "expected", "bounded"),
    list(RFC_EXAMPLES.values()),
    ids=list(RFC_EXAMPLES),
)
def test_completing_each_instance_spawns_the_rfc_occurrences(
    start_series, rule, dtstart, expected, bounded
):
    first = start_series(rule, dtstart)

    # A bounded series is followed past its end, so a spawn after the last would show.
    dues, last = follow_series(first, limit=len(expected) + 3 if bounded else len(expected))

    assert [due.isoformat() for due in dues] == as_local(expected)
    if bounded:
        last.refresh_from_db()
        assert last.completed
        assert last.next_occurrence_at is None
        assert RecurrenceSeries.objects.get(pk=first.series_id).ended
        assert Task.objects.filter(series_id=first.series_id).count() == len(expected)


def test_the_time_of_day_survives_the_october_1997_dst_change(start_series):
    first = start_series("FREQ=WEEKLY;COUNT=10", "1997-09-02")

    dues, _ = follow_series(first, limit=11)

    assert {due.strftime("%H:%M") for due in dues} == {"09:00"}
    assert [due.utcoffset() for due in dues] == [dt.timedelta(hours=-4)] * 8 + [
        dt.timedelta(hours=-5)
    ] * 2
    # 09:00 local is 13:00 UTC in summer time and 14:00 UTC after the change.
    assert [due.astimezone(dt.UTC).hour for due in dues] == [13] * 8 + [14] * 2


def test_a_time_in_the_spring_gap_moves_forward_by_the_gap(start_series):
    first = start_series("FREQ=DAILY", "1998-04-03 02:30")

    dues, _ = follow_series(first, limit=4)

    assert [due.isoformat() for due in dues] == [
        "1998-04-03T02:30:00-05:00",
        "1998-04-04T02:30:00-05:00",
        "1998-04-05T03:30:00-04:00",  # 02:30 does not exist that night
        "1998-04-06T02:30:00-04:00",
    ]


def test_an_ambiguous_autumn_time_takes_the_first_of_the_two(start_series):
    first = start_series("FREQ=DAILY", "1997-10-25 01:30")

    dues, _ = follow_series(first, limit=3)

    assert [due.isoformat() for due in dues] == [
        "1997-10-25T01:30:00-04:00",
        "1997-10-26T01:30:00-04:00",  # 01:30 happens twice that night: the first one
        "1997-10-27T01:30:00-05:00",
    ]


def test_done_when_weekly_ten_times_over_the_rest_api(api):
    response = api.post(
        "/api/tasks/",
        {
            "title": "Weekly review",
            "due_date": "1997-09-02T09:00:00",
            "timezone": NEW_YORK,
            "recurrence_rule": "FREQ=WEEKLY;COUNT=10",
        },
    )
    assert response.status_code == 201, response.json()
    task = response.json()
    dues = [task["due_date"]]
    for _ in range(12):  # each time, complete the newly spawned instance
        completed = api.post(f"/api/tasks/{task['id']}/complete/")
        assert completed.status_code == 200, completed.json()
        announced = completed.json()["next_occurrence_at"]
        relay_pending()
        spawned = Task.objects.filter(parent_id=task["id"]).first()
        if spawned is None:
            assert announced is None
            break
        task = api.get(f"/api/tasks/{spawned.pk}/").json()
        assert task["due_date"] == announced  # the complete response already knew it
        dues.append(task["due_date"])
    else:
        pytest.fail("still spawning after 12 completions")

    assert dues == [
        "1997-09-02T09:00:00-04:00",
        "1997-09-09T09:00:00-04:00",
        "1997-09-16T09:00:00-04:00",
        "1997-09-23T09:00:00-04:00",
        "1997-09-30T09:00:00-04:00",
        "1997-10-07T09:00:00-04:00",
        "1997-10-14T09:00:00-04:00",
        "1997-10-21T09:00:00-04:00",
        "1997-10-28T09:00:00-05:00",
        "1997-11-04T09:00:00-05:00",
    ]
    assert api.get("/api/tasks/").json()["count"] == 10
