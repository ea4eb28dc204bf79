"""``completion`` mode ("every!"): the next instance counts from the day it was completed.

The rule is re-anchored on the local day of the stored completion time, at the series' time
of day; the next instance is the first occurrence strictly after that anchor. The relay runs
at today's real date, years after the frozen completion time, so any use of "now" instead
of the stored ``completed_at`` would show.
"""

from __future__ import annotations

import pytest

from recurrence.models import RecurrenceSeries
from tests.recurrence.helpers import NEW_YORK, at, complete, complete_and_relay, local_due


@pytest.fixture
def every_after_completion(alice, make_task):
    def start(rule: str, due: str) -> object:
        return make_task(
            alice,
            title="Water the plants",
            due_date=at(due).replace(tzinfo=None),
            timezone=NEW_YORK,
            recurrence_rule=rule,
            recurrence_mode="completion",
        )

    return start


def stamp(task) -> str:
    return local_due(task).strftime("%a %Y-%m-%d %H:%M")


# (rule, first due, completed at (local), next due)
COMPLETION_CASES = {
    "every-3-days-completed-late": (
        "FREQ=DAILY;INTERVAL=3",
        "2025-01-06 09:00",
        "2025-01-10 17:30",
        "Mon 2025-01-13 09:00",
    ),
    "every-3-days-completed-early": (
        "FREQ=DAILY;INTERVAL=3",
        "2025-01-06 09:00",
        "2025-01-05 08:00",
        "Wed 2025-01-08 09:00",
    ),
    "every-3-days-completed-late-at-night-counts-the-local-day": (
        "FREQ=DAILY;INTERVAL=3",
        "2025-01-06 09:00",
        "2025-01-10 23:30",  # already 11 January in UTC
        "Mon 2025-01-13 09:00",
    ),
    "every-monday-completed-on-a-wednesday": (
        "FREQ=WEEKLY;BYDAY=MO",
        "2025-01-06 09:00",
        "2025-01-15 12:00",
        "Mon 2025-01-20 09:00",
    ),
    "every-monday-completed-on-a-monday-before-the-series-time": (
        "FREQ=WEEKLY;BYDAY=MO",
        "2025-01-06 09:00",
        "2025-01-13 07:00",
        "Mon 2025-01-20 09:00",
    ),
    "every-monday-completed-on-a-monday-after-the-series-time": (
        "FREQ=WEEKLY;BYDAY=MO",
        "2025-01-06 09:00",
        "2025-01-13 18:00",
        "Mon 2025-01-20 09:00",
    ),
    "every-week-across-the-spring-dst-change": (
        "FREQ=WEEKLY",
        "2025-03-03 09:00",
        "2025-03-05 20:00",
        "Wed 2025-03-12 09:00",
    ),
}


@pytest.mark.parametrize(
    ("rule", "due", "completed_at", "next_due"),
    list(COMPLETION_CASES.values()),
    ids=list(COMPLETION_CASES),
)
def test_the_next_instance_follows_the_completion_day_at_the_series_time(
    every_after_completion, rule, due, completed_at, next_due
):
    first = every_after_completion(rule, due)

    spawned = complete_and_relay(first, when=at(completed_at))

    assert stamp(spawned) == next_due
    assert spawned.recurrence_mode == "completion"


def test_the_complete_response_announces_the_same_next_due_date(every_after_completion):
    first = every_after_completion("FREQ=DAILY;INTERVAL=3", "2025-01-06 09:00")

    completed = complete(first, when=at("2025-01-10 17:30"))
    spawned = complete_and_relay(completed)  # already completed: only relays

    assert completed.next_occurrence_at == spawned.due_date


def test_the_stored_completion_time_is_used_not_the_time_of_delivery(every_after_completion):
    first = every_after_completion("FREQ=DAILY;INTERVAL=3", "2025-01-06 09:00")
    complete(first, when=at("2025-01-10 17:30"))
    first.refresh_from_db()
    assert first.completed_at == at("2025-01-10 17:30")

    # Delivered long after (the relay runs at today's real date).
    spawned = complete_and_relay(first)

    assert stamp(spawned) == "Mon 2025-01-13 09:00"


def test_count_still_counts_the_instances_of_the_series(every_after_completion):
    first = every_after_completion("FREQ=DAILY;COUNT=3", "2025-01-06 09:00")

    second = complete_and_relay(first, when=at("2025-01-09 10:00"))
    third = complete_and_relay(second, when=at("2025-01-20 10:00"))
    after_third = complete_and_relay(third, when=at("2025-01-21 10:00"))

    assert [stamp(second), stamp(third)] == ["Fri 2025-01-10 09:00", "Tue 2025-01-21 09:00"]
    assert after_third is None
    assert RecurrenceSeries.objects.get(pk=first.series_id).ended


def test_until_still_ends_the_series(every_after_completion):
    # UNTIL is 10 January 18:59:59 in New York.
    first = every_after_completion("FREQ=DAILY;UNTIL=20250110T235959Z", "2025-01-06 09:00")

    second = complete_and_relay(first, when=at("2025-01-09 10:00"))
    after_second = complete_and_relay(second, when=at("2025-01-10 10:00"))

    assert stamp(second) == "Fri 2025-01-10 09:00"
    assert after_second is None
    assert RecurrenceSeries.objects.get(pk=first.series_id).ended


def test_schedule_mode_ignores_when_it_was_completed(alice, make_task):
    first = make_task(
        alice,
        due_date=at("2025-01-06 09:00").replace(tzinfo=None),
        timezone=NEW_YORK,
        recurrence_rule="FREQ=DAILY;INTERVAL=3",
    )

    spawned = complete_and_relay(first, when=at("2025-01-10 17:30"))

    assert stamp(spawned) == "Thu 2025-01-09 09:00"
