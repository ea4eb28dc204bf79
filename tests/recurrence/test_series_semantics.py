"""Month ends, presets and series without a due date, spawned instance after instance."""

from __future__ import annotations

import pytest

from tests.recurrence.helpers import (
    NEW_YORK,
    at,
    complete_and_relay,
    follow_series,
    local_due,
)


def dates(dues) -> list[str]:
    return [due.strftime("%Y-%m-%d %H:%M") for due in dues]


@pytest.fixture
def start_series(alice, make_task):
    def start(due: str, **recurrence) -> object:
        return make_task(
            alice,
            due_date=at(due).replace(tzinfo=None),
            timezone=NEW_YORK,
            **recurrence,
        )

    return start


# (rule, first due, the series' first due dates) — RFC 5545 skips a date that does not exist
MONTH_ENDS = {
    "on-the-31st-skips-months-without-one": (
        "FREQ=MONTHLY;BYMONTHDAY=31",
        "2025-01-31",
        ["01-31", "03-31", "05-31", "07-31", "08-31", "10-31", "12-31"],
    ),
    "monthly-from-the-31st-skips-months-without-one": (
        "FREQ=MONTHLY",
        "2025-01-31",
        ["01-31", "03-31", "05-31", "07-31"],
    ),
    "on-the-30th-skips-february": (
        "FREQ=MONTHLY;BYMONTHDAY=30",
        "2025-01-30",
        ["01-30", "03-30", "04-30"],
    ),
    "last-day-of-the-month": (
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "2025-01-31",
        ["01-31", "02-28", "03-31", "04-30", "05-31", "06-30"],
    ),
}


@pytest.mark.parametrize(
    ("rule", "due", "expected"), list(MONTH_ENDS.values()), ids=list(MONTH_ENDS)
)
def test_month_ends_follow_rfc_5545(start_series, rule, due, expected):
    first = start_series(due, recurrence_rule=rule)

    dues, _ = follow_series(first, limit=len(expected))

    assert dates(dues) == [f"2025-{day} 09:00" for day in expected]


def test_last_day_of_february_in_a_leap_year_is_the_29th(start_series):
    first = start_series("2024-01-31", recurrence_rule="FREQ=MONTHLY;BYMONTHDAY=-1")

    dues, _ = follow_series(first, limit=3)

    assert dates(dues) == ["2024-01-31 09:00", "2024-02-29 09:00", "2024-03-31 09:00"]


def test_yearly_on_february_29_waits_for_the_next_leap_year(start_series):
    first = start_series("2024-02-29", recurrence_rule="FREQ=YEARLY")

    dues, _ = follow_series(first, limit=2)

    assert dates(dues) == ["2024-02-29 09:00", "2028-02-29 09:00"]


# (recurrence_type, recurrence_interval, the rule it stands for, due dates from Mon 6 Jan 2025)
PRESETS = {
    "daily": ("daily", 1, "FREQ=DAILY", ["2025-01-06", "2025-01-07", "2025-01-08"]),
    "every-2-weeks": (
        "weekly",
        2,
        "FREQ=WEEKLY;INTERVAL=2",
        ["2025-01-06", "2025-01-20", "2025-02-03"],
    ),
    "monthly": ("monthly", 1, "FREQ=MONTHLY", ["2025-01-06", "2025-02-06", "2025-03-06"]),
    "every-3-months": (
        "monthly",
        3,
        "FREQ=MONTHLY;INTERVAL=3",
        ["2025-01-06", "2025-04-06", "2025-07-06"],
    ),
    "yearly": ("yearly", 1, "FREQ=YEARLY", ["2025-01-06", "2026-01-06", "2027-01-06"]),
}


@pytest.mark.parametrize(
    ("recurrence_type", "interval", "rule", "expected"),
    list(PRESETS.values()),
    ids=list(PRESETS),
)
def test_a_preset_maps_to_its_rule_and_spawns_by_it(
    start_series, recurrence_type, interval, rule, expected
):
    first = start_series(
        "2025-01-06", recurrence_type=recurrence_type, recurrence_interval=interval
    )

    dues, last = follow_series(first, limit=len(expected))

    assert first.series.rule == rule
    assert dates(dues) == [f"{day} 09:00" for day in expected]
    assert (last.recurrence_type, last.recurrence_interval, last.recurrence_rule) == (
        recurrence_type,
        interval,
        "",
    )


def test_a_preset_over_the_api_shows_the_rule_it_stands_for(api):
    response = api.post(
        "/api/tasks/",
        {
            "title": "Fortnightly",
            "due_date": "2025-01-06T09:00:00",
            "recurrence_type": "weekly",
            "recurrence_interval": 2,
        },
    )

    assert response.status_code == 201, response.json()
    occurrences = api.get(f"/api/tasks/{response.json()['id']}/occurrences/").json()
    assert occurrences["rule"] == "FREQ=WEEKLY;INTERVAL=2"


def test_a_series_without_a_due_date_anchors_on_its_first_completion(alice, make_task):
    first = make_task(alice, timezone=NEW_YORK, recurrence_rule="FREQ=DAILY")
    assert first.due_date is None

    second = complete_and_relay(first, when=at("2025-01-10 17:30"))
    third = complete_and_relay(second, when=at("2025-01-11 08:05"))

    assert local_due(second).strftime("%Y-%m-%d %H:%M") == "2025-01-11 17:30"
    assert local_due(third).strftime("%Y-%m-%d %H:%M") == "2025-01-12 17:30"
    assert second.series_id == third.series_id == first.series_id


def test_a_series_without_a_due_date_announces_its_next_due_date(alice, make_task):
    first = make_task(alice, timezone=NEW_YORK, recurrence_rule="FREQ=WEEKLY")

    second = complete_and_relay(first, when=at("2025-01-10 17:30"))

    first.refresh_from_db()
    assert first.next_occurrence_at == second.due_date == at("2025-01-17 17:30")
