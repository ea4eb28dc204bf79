"""``first_on_rule``: where a new series starts so that its first due date is on its rule."""

from __future__ import annotations

import datetime as dt

import pytest
from dateutil.rrule import rrulestr

from recurrence.engine import first_on_rule


@pytest.mark.parametrize(
    ("rule", "start", "first"),
    [
        # Saturday the 5th: rent on the 1st is first due on the 1st of the next month.
        ("FREQ=MONTHLY;BYMONTHDAY=1", dt.datetime(2026, 12, 5, 10), dt.datetime(2027, 1, 1, 10)),
        ("FREQ=MONTHLY;BYMONTHDAY=1", dt.datetime(2027, 1, 1, 10), dt.datetime(2027, 1, 1, 10)),
        # A weekday stand-up from a Saturday: Monday, at the same time.
        (
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            dt.datetime(2026, 12, 5, 9, 30),
            dt.datetime(2026, 12, 7, 9, 30),
        ),
        # Every other Thursday, from a Monday: that week's Thursday.
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
            dt.datetime(2026, 12, 7, 20),
            dt.datetime(2026, 12, 10, 20),
        ),
        # From a Friday: the next Thursday, not the one after (the interval counts from it).
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
            dt.datetime(2026, 12, 4, 20),
            dt.datetime(2026, 12, 10, 20),
        ),
        # The 1st of a month, every third month: the next 1st.
        (
            "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1",
            dt.datetime(2026, 12, 5, 10),
            dt.datetime(2027, 1, 1, 10),
        ),
        # A rule without a day matches any start.
        ("FREQ=DAILY;INTERVAL=2", dt.datetime(2026, 12, 5, 7), dt.datetime(2026, 12, 5, 7)),
        # A time of day in the rule wins over the start's.
        (
            "FREQ=DAILY;BYHOUR=18;BYMINUTE=0",
            dt.datetime(2026, 12, 5, 19),
            dt.datetime(2026, 12, 6, 18),
        ),
        # The last day of February, in a leap year.
        ("FREQ=MONTHLY;BYMONTHDAY=-1", dt.datetime(2028, 2, 3, 9), dt.datetime(2028, 2, 29, 9)),
    ],
)
def test_a_series_starts_on_the_first_occurrence_its_rule_matches(rule, start, first):
    assert first_on_rule(rule, start, "Europe/Berlin") == first


@pytest.mark.parametrize(
    ("rule", "start"),
    [
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TH", dt.datetime(2026, 12, 4, 20)),
        ("FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1", dt.datetime(2026, 12, 5, 10)),
        ("FREQ=YEARLY;INTERVAL=2;BYMONTH=3;BYDAY=-1SU", dt.datetime(2026, 12, 5, 10)),
    ],
)
def test_the_series_then_starts_on_its_first_due_date(rule, start):
    first = first_on_rule(rule, start, "Europe/Berlin")

    assert rrulestr(rule, dtstart=first)[0] == first


def test_a_rule_ended_before_the_start_has_no_first_occurrence():
    rule = "FREQ=DAILY;UNTIL=20261201T000000Z"

    assert first_on_rule(rule, dt.datetime(2026, 12, 5, 9), "Europe/Berlin") is None
