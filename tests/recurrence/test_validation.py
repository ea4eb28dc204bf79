"""Invalid rules are a 400 naming the field and the reason, answered in milliseconds."""

from __future__ import annotations

import time

import pytest

from tests.recurrence.helpers import NEW_YORK

TASKS = "/api/tasks/"
PREVIEW = "/api/recurrence/preview/"
#: Validation searches a bounded horizon and a bounded number of candidate date-times; an
#: unbounded search for a rule that never occurs takes seconds (the minutely BYSETPOS rule:
#: 54 s), so a full second is far above what any validation may cost.
FAST = 1.0

# (rule, a phrase of the reason)
INVALID_RULES = {
    "missing-freq": ("INTERVAL=2;BYDAY=MO", "FREQ is required"),
    "secondly": ("FREQ=SECONDLY", "FREQ must be one of"),
    "unknown-freq": ("FREQ=SOMETIMES", "FREQ must be one of"),
    "unknown-weekday": ("FREQ=WEEKLY;BYDAY=XX", "BYDAY value 'XX'"),
    "weekday-position-in-weekly": ("FREQ=WEEKLY;BYDAY=1MO", "allowed only with MONTHLY or YEARLY"),
    "count-with-until": ("FREQ=DAILY;COUNT=5;UNTIL=20300101T000000Z", "COUNT and UNTIL"),
    "until-not-utc": ("FREQ=DAILY;UNTIL=20300101T000000", "UNTIL must be a UTC date-time"),
    "interval-zero": ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number"),
    "absurd-length": ("FREQ=DAILY;BYMONTHDAY=10" + ",1" * 288, "longer than"),
    "never-occurs": ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never produces an occurrence"),
    # dateutil checks UNTIL only on a match: unbounded, these scan to the year 9999.
    "never-occurs-daily": ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "never produces an occurrence"),
    # Searched until the budget of candidate date-times is spent, well before the horizon.
    "never-occurs-minutely": ("FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31", "too much searching"),
    "never-occurs-setpos": ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2", "too much searching"),
    "minutely-setpos": ("FREQ=MINUTELY;BYSECOND=0;BYSETPOS=2", "too much searching"),
    "minutely-leap-day-monday": (
        "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
        "too much searching",
    ),
    "never-occurs-interval": ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "never produces an occurrence"),
    "leap-second": ("FREQ=MINUTELY;BYSECOND=60", "second must be in 0..59"),
}
CASES = pytest.mark.parametrize(
    ("rule", "reason"), list(INVALID_RULES.values()), ids=list(INVALID_RULES)
)


def timed_post(api, url, data):
    started = time.perf_counter()
    response = api.post(url, data)
    return response, time.perf_counter() - started


def test_the_absurd_rule_is_600_characters_long():
    assert len(INVALID_RULES["absurd-length"][0]) == 600


@CASES
def test_creating_a_task_with_an_invalid_rule_is_a_400_saying_why(api, rule, reason):
    response, elapsed = timed_post(
        api,
        TASKS,
        {
            "title": "Bad rule",
            "due_date": "2030-01-07T09:00:00",
            "timezone": NEW_YORK,
            "recurrence_rule": rule,
        },
    )

    assert response.status_code == 400
    messages = response.json()["recurrence_rule"]
    assert any(reason in message for message in messages), messages
    assert elapsed < FAST


@CASES
def test_previewing_an_invalid_rule_is_a_400_saying_why(api, rule, reason):
    response, elapsed = timed_post(
        api, PREVIEW, {"rule": rule, "due_date": "2030-01-07T09:00:00", "timezone": NEW_YORK}
    )

    assert response.status_code == 400
    messages = response.json()["rule"]
    assert any(reason in message for message in messages), messages
    assert elapsed < FAST


@CASES
def test_an_invalid_rule_creates_nothing(api, alice, rule, reason):
    api.post(TASKS, {"title": "Bad rule", "recurrence_rule": rule})

    assert not alice.tasks.exists()
    assert not alice.recurrence_series.exists()


@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=WEEKLY;BYDAY=MO",
        "rrule:freq=weekly;byday=mo",
        " FREQ=WEEKLY;BYDAY=MO; ",
    ],
)
def test_the_rrule_prefix_case_and_spacing_are_accepted_and_normalised(api, rule):
    response = api.post(
        TASKS, {"title": "Gym", "due_date": "2030-01-07T09:00:00", "recurrence_rule": rule}
    )

    assert response.status_code == 201, response.json()
    assert response.json()["recurrence_rule"] == "FREQ=WEEKLY;BYDAY=MO"


@pytest.mark.parametrize("freq", ["MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"])
def test_every_frequency_from_minutely_to_yearly_is_accepted(api, freq):
    response = api.post(
        TASKS,
        {"title": "Any", "due_date": "2030-01-07T09:00:00", "recurrence_rule": f"FREQ={freq}"},
    )

    assert response.status_code == 201, response.json()


def test_a_past_due_date_is_fine(api):
    response = api.post(
        TASKS,
        {
            "title": "Overdue",
            "due_date": "1997-09-02T09:00:00",
            "timezone": NEW_YORK,
            "recurrence_rule": "FREQ=DAILY;UNTIL=19971224T000000Z",
        },
    )

    assert response.status_code == 201, response.json()


def test_a_rule_that_occurs_only_on_february_29_is_found_quickly(api):
    response, elapsed = timed_post(
        api,
        PREVIEW,
        {"rule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "due_date": "2030-01-07T09:00:00"},
    )

    assert response.status_code == 200, response.json()
    assert response.json()["occurrences"][1].startswith("2032-02-29")
    assert elapsed < FAST


def test_a_rule_and_a_preset_together_are_a_400(api):
    response = api.post(
        TASKS,
        {
            "title": "Both",
            "due_date": "2030-01-07T09:00:00",
            "recurrence_rule": "FREQ=DAILY",
            "recurrence_type": "weekly",
        },
    )

    assert response.status_code == 400
    assert "recurrence_rule" in response.json()


@pytest.mark.parametrize("rule", ["FREQ=YEARLY;INTERVAL=31", "FREQ=MONTHLY;INTERVAL=400"])
def test_a_long_interval_is_a_valid_rule(api, rule):
    response = api.post(
        "/api/recurrence/preview/",
        {"rule": rule, "due_date": "2030-01-01T09:00:00", "timezone": "UTC", "count": 2},
    )

    assert response.status_code == 200, response.json()
    assert len(response.json()["occurrences"]) == 2


def test_a_preview_start_beyond_the_supported_years_is_400(api):
    response = api.post(
        "/api/recurrence/preview/", {"rule": "FREQ=DAILY", "due_date": "9990-01-01T09:00:00Z"}
    )

    assert response.status_code == 400
    assert "due_date" in response.json()
