"""The task form's repeat presets: the RRULE each one builds, and recognising them again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from recurrence.presets import (
    RecurrenceChoice,
    build_rule,
    choice_from_rule,
    nth_weekday,
    nth_weekday_words,
    until_utc,
)

NEW_YORK = "America/New_York"
#: Tuesday 9 April 2030, 09:00: the second Tuesday of the month.
DUE = dt.datetime(2030, 4, 9, 9, 0)


@pytest.mark.parametrize(
    ("day", "item", "words"),
    [
        (dt.date(2030, 4, 1), "1MO", "first Monday"),
        (dt.date(2030, 4, 9), "2TU", "second Tuesday"),
        (dt.date(2030, 3, 22), "4FR", "fourth Friday"),  # the 29th is the last one
        (dt.date(2030, 4, 24), "-1WE", "last Wednesday"),  # April has no 31st
        (dt.date(2030, 4, 26), "-1FR", "last Friday"),  # the fourth, and the last
        (dt.date(2030, 4, 29), "-1MO", "last Monday"),  # the fifth is always the last
        (dt.date(2030, 2, 22), "-1FR", "last Friday"),  # a 28-day February
        (dt.date(2028, 2, 22), "4TU", "fourth Tuesday"),  # a leap February has a 29th
    ],
)
def test_nth_weekday_of_a_day(day, item, words):
    assert (nth_weekday(day), nth_weekday_words(day)) == (item, words)


@pytest.mark.parametrize(
    ("choice", "rule"),
    [
        (RecurrenceChoice(), ""),
        (RecurrenceChoice(preset="daily"), "FREQ=DAILY"),
        (RecurrenceChoice(preset="daily", interval=3), "FREQ=DAILY;INTERVAL=3"),
        (RecurrenceChoice(preset="weekdays"), "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        (RecurrenceChoice(preset="weekly"), "FREQ=WEEKLY"),
        (
            RecurrenceChoice(preset="weekly", interval=2, weekdays=("TH", "MO", "TH")),
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
        ),
        (RecurrenceChoice(preset="monthly_day"), "FREQ=MONTHLY;BYMONTHDAY=9"),
        (RecurrenceChoice(preset="monthly_weekday"), "FREQ=MONTHLY;BYDAY=2TU"),
        (RecurrenceChoice(preset="yearly"), "FREQ=YEARLY"),
        (RecurrenceChoice(preset="daily", end="count", count=5), "FREQ=DAILY;COUNT=5"),
        (
            RecurrenceChoice(preset="daily", end="until", until=dt.date(2030, 12, 31)),
            "FREQ=DAILY;UNTIL=20310101T045959Z",
        ),
        (RecurrenceChoice(preset="daily", end="count"), "FREQ=DAILY"),  # no number: no end
        (
            RecurrenceChoice(preset="custom", custom_rule=" rrule:freq=hourly;interval=6; "),
            "FREQ=HOURLY;INTERVAL=6",
        ),
        (  # the other options belong to the presets, not to a custom rule
            RecurrenceChoice(
                preset="custom", custom_rule="FREQ=DAILY", interval=4, end="count", count=2
            ),
            "FREQ=DAILY",
        ),
    ],
)
def test_build_rule(choice, rule):
    assert build_rule(choice, due_local=DUE, tz_name=NEW_YORK) == rule


def test_monthly_on_the_day_without_a_due_date_is_the_first_instances_day():
    choice = RecurrenceChoice(preset="monthly_day")

    assert build_rule(choice, due_local=None, tz_name=NEW_YORK) == "FREQ=MONTHLY"


def test_monthly_on_the_nth_weekday_needs_a_due_date():
    with pytest.raises(ValidationError) as raised:
        build_rule(RecurrenceChoice(preset="monthly_weekday"), due_local=None, tz_name=NEW_YORK)

    assert raised.value.messages == ["Set a due date: the weekday of the month comes from it."]


def test_an_empty_custom_rule_is_an_error():
    with pytest.raises(ValidationError) as raised:
        build_rule(
            RecurrenceChoice(preset="custom", custom_rule="  "), due_local=DUE, tz_name="UTC"
        )

    assert raised.value.messages == ["Enter a rule, e.g. FREQ=WEEKLY;BYDAY=MO,TH."]


def test_until_is_the_end_of_the_local_day_in_utc_on_either_side_of_dst():
    assert until_utc(dt.date(2030, 1, 15), NEW_YORK) == "20300116T045959Z"  # EST, -05:00
    assert until_utc(dt.date(2030, 7, 15), NEW_YORK) == "20300716T035959Z"  # EDT, -04:00


@pytest.mark.parametrize(
    "choice",
    [
        RecurrenceChoice(),
        RecurrenceChoice(preset="daily", interval=2),
        RecurrenceChoice(preset="weekdays"),
        RecurrenceChoice(preset="weekly", weekdays=("MO", "FR")),
        RecurrenceChoice(preset="weekly", interval=3),
        RecurrenceChoice(preset="monthly_day", end="count", count=12),
        RecurrenceChoice(preset="monthly_weekday"),
        RecurrenceChoice(preset="yearly", end="until", until=dt.date(2040, 4, 9)),
    ],
)
def test_a_built_rule_is_recognised_as_its_preset(choice):
    rule = build_rule(choice, due_local=DUE, tz_name=NEW_YORK)

    assert choice_from_rule(rule, due_local=DUE, tz_name=NEW_YORK) == choice


@pytest.mark.parametrize(
    ("rule", "preset"),
    [
        ("FREQ=WEEKLY;BYDAY=FR,MO", "weekly"),  # any order of days
        ("RRULE:FREQ=WEEKLY;BYDAY=FR,TH,WE,TU,MO", "weekdays"),
        ("FREQ=MONTHLY", "monthly_day"),  # recurrence_type "monthly"
        ("FREQ=MONTHLY;INTERVAL=2", "monthly_day"),
        ("FREQ=MONTHLY;BYMONTHDAY=10", "custom"),  # not the due date's day
        ("FREQ=MONTHLY;BYDAY=3TU", "custom"),  # not the due date's position
        ("FREQ=MONTHLY;BYDAY=-1TU", "custom"),  # the 9th is not the last Tuesday
        ("FREQ=WEEKLY;BYDAY=MO;WKST=SU", "custom"),
        ("FREQ=DAILY;UNTIL=20301231T120000Z", "custom"),  # not the end of a local day
        ("FREQ=HOURLY", "custom"),
        ("FREQ=YEARLY;BYMONTH=4", "custom"),
        ("not a rule", "custom"),
    ],
)
def test_a_stored_rule_is_shown_as_a_preset_only_when_it_builds_back_exactly(rule, preset):
    choice = choice_from_rule(rule, due_local=DUE, tz_name=NEW_YORK)

    assert choice.preset == preset
    if preset == "custom":
        assert choice.custom_rule == rule.upper().removeprefix("RRULE:")


def test_a_stored_count_and_interval_come_back():
    choice = choice_from_rule(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=8", due_local=DUE, tz_name="UTC"
    )

    assert choice == RecurrenceChoice(
        preset="weekly", interval=2, weekdays=("TU",), end="count", count=8
    )
