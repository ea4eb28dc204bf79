"""Listing occurrences, previewing a rule not saved yet, and describing rules in words."""

from __future__ import annotations

import pytest

from recurrence.describe import describe
from tests.recurrence.helpers import NEW_YORK, at, complete_and_relay

PREVIEW = "/api/recurrence/preview/"


@pytest.fixture
def weekly_task(alice, make_task):
    """Due Tuesday 21 October 1997 09:00 New York: the clocks change on the 26th."""
    return make_task(
        alice,
        title="Weekly review",
        due_date=at("1997-10-21").replace(tzinfo=None),
        timezone=NEW_YORK,
        recurrence_rule="FREQ=WEEKLY",
    )


def occurrences(api, task_id, **params):
    return api.get(f"/api/tasks/{task_id}/occurrences/", params)


def test_occurrences_lists_this_instance_and_the_next_four_with_local_offsets(api, weekly_task):
    response = occurrences(api, weekly_task.pk, count=5)

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "rule": "FREQ=WEEKLY",
        "description": "every week",
        "occurrences": [
            "1997-10-21T09:00:00-04:00",
            "1997-10-28T09:00:00-05:00",
            "1997-11-04T09:00:00-05:00",
            "1997-11-11T09:00:00-05:00",
            "1997-11-18T09:00:00-05:00",
        ],
        "truncated": False,
        "truncated_reason": "",
    }


def test_occurrences_of_a_spawned_instance_start_at_its_own_occurrence(api, weekly_task):
    second = complete_and_relay(weekly_task)

    response = occurrences(api, second.pk, count=2)

    assert response.json()["occurrences"] == [
        "1997-10-28T09:00:00-05:00",
        "1997-11-04T09:00:00-05:00",
    ]


def test_occurrences_stop_where_the_series_ends(api, alice, make_task):
    task = make_task(
        alice,
        due_date=at("1997-09-02").replace(tzinfo=None),
        timezone=NEW_YORK,
        recurrence_rule="FREQ=DAILY;COUNT=3",
    )

    response = occurrences(api, task.pk, count=10)

    assert len(response.json()["occurrences"]) == 3


def test_occurrences_count_defaults_to_five(api, weekly_task):
    assert len(occurrences(api, weekly_task.pk).json()["occurrences"]) == 5


@pytest.mark.parametrize("count", [0, -1, 51, "many"])
def test_occurrences_count_out_of_range_is_a_400(api, weekly_task, count):
    response = occurrences(api, weekly_task.pk, count=count)

    assert response.status_code == 400
    assert "count" in response.json()


def test_occurrences_of_a_task_that_does_not_repeat_are_empty(api, alice, make_task):
    task = make_task(alice, due_date=at("1997-09-02"))

    assert occurrences(api, task.pk).json() == {
        "rule": "",
        "description": "",
        "occurrences": [],
        "truncated": False,
        "truncated_reason": "",
    }


def test_bob_cannot_see_alices_occurrences(bob_api, weekly_task):
    response = occurrences(bob_api, weekly_task.pk)

    assert response.status_code == 404


def test_preview_returns_rule_description_and_occurrences(api):
    response = api.post(
        PREVIEW,
        {
            "rule": "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR",
            "due_date": "1997-10-20T09:00:00",
            "timezone": NEW_YORK,
            "count": 4,
        },
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "rule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR",
        "description": "every 2 weeks on Monday and Friday",
        "occurrences": [
            "1997-10-20T09:00:00-04:00",
            "1997-10-24T09:00:00-04:00",
            "1997-11-03T09:00:00-05:00",
            "1997-11-07T09:00:00-05:00",
        ],
        "truncated": False,
        "truncated_reason": "",
    }


def test_preview_reads_an_aware_due_date_as_that_instant(api):
    response = api.post(
        PREVIEW,
        {
            "rule": "FREQ=DAILY;COUNT=2",
            "due_date": "1997-09-02T13:00:00Z",
            "timezone": NEW_YORK,
        },
    )

    assert response.json()["occurrences"] == [
        "1997-09-02T09:00:00-04:00",
        "1997-09-03T09:00:00-04:00",
    ]


def test_preview_of_a_past_due_date_is_fine(api):
    response = api.post(
        PREVIEW, {"rule": "FREQ=YEARLY", "due_date": "1970-01-01T09:00:00", "timezone": "UTC"}
    )

    assert response.status_code == 200
    assert response.json()["occurrences"][:2] == ["1970-01-01T09:00:00Z", "1971-01-01T09:00:00Z"]


@pytest.mark.parametrize("count", [0, 51])
def test_preview_count_out_of_range_is_a_400(api, count):
    response = api.post(PREVIEW, {"rule": "FREQ=DAILY", "count": count})

    assert response.status_code == 400
    assert "count" in response.json()


def test_task_json_describes_its_rule(api):
    response = api.post(
        "/api/tasks/",
        {
            "title": "Gym",
            "due_date": "2025-01-06T07:00:00",
            "timezone": NEW_YORK,
            "recurrence_rule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR",
        },
    )

    assert response.status_code == 201, response.json()
    assert response.json()["recurrence_description"] == "every 2 weeks on Monday and Friday"


def test_task_json_describes_a_preset(api):
    response = api.post(
        "/api/tasks/",
        {
            "title": "Gym",
            "due_date": "2025-01-06T07:00:00",
            "recurrence_type": "weekly",
            "recurrence_interval": 2,
        },
    )

    assert response.json()["recurrence_description"] == "every 2 weeks"


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("FREQ=DAILY", "every day"),
        ("FREQ=DAILY;INTERVAL=3", "every 3 days"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR", "every 2 weeks on Monday and Friday"),
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "every weekday"),
        ("FREQ=WEEKLY;BYDAY=TU,TH;COUNT=10", "every week on Tuesday and Thursday, 10 times"),
        ("RRULE:FREQ=MONTHLY;BYDAY=1FR", "every month on the first Friday"),
        ("FREQ=MONTHLY;BYDAY=-2MO", "every month on the 2nd to last Monday"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", "every month on the last day"),
        ("FREQ=MONTHLY;BYMONTHDAY=2,15", "every month on the 2nd and 15th"),
        ("FREQ=YEARLY;BYMONTH=6,7", "every year in June and July"),
        ("FREQ=DAILY;UNTIL=19971224T000000Z", "every day, until December 24, 1997"),
        ("FREQ=MINUTELY;INTERVAL=15;COUNT=1", "every 15 minutes, once"),
        ("", ""),
    ],
)
def test_describe(rule, words):
    assert describe(rule) == words
