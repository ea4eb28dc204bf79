"""``first_on_rule``: where a new series starts so that its first due date is on its rule."""

from __future__ import annotations

import datetime as dt

import pytest

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


def test_a_rule_ended_before_the_start_has_no_first_occurrence():
    rule = "FREQ=DAILY;UNTIL=20261201T000000Z"

    assert first_on_rule(rule, dt.datetime(2026, 12, 5, 9), "Europe/Berlin") is None
