"""Human-readable descriptions of RRULEs: "every 2 weeks on Monday and Friday"."""

from __future__ import annotations

import calendar
import datetime as dt

from django.core.exceptions import ValidationError

from .rules import normalise_rule, parse_parts

_UNITS = {
    "MINUTELY": "minute",
    "HOURLY": "hour",
    "DAILY": "day",
    "WEEKLY": "week",
    "MONTHLY": "month",
    "YEARLY": "year",
}
_DAY_NAMES = {
    "MO": "Monday",
    "TU": "Tuesday",
    "WE": "Wednesday",
    "TH": "Thursday",
    "FR": "Friday",
    "SA": "Saturday",
    "SU": "Sunday",
}
_ORDINAL_WORDS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _ordinal(number: int) -> str:
    if number == -1:
        return "last day"
    if number < 0:
        return f"{_ordinal(-number)} to last day"
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _weekday(item: str) -> str:
    day = _DAY_NAMES[item[-2:]]
    position = item[:-2]
    if not position:
        return day
    number = int(position)
    word = _ORDINAL_WORDS.get(number) or (
        f"{_ordinal(number)}" if number > 0 else f"{_ordinal(-number)} to last"
    )
    return f"the {word} {day}"


def describe(rule_text: str) -> str:
    """A sentence for a valid rule (best effort for exotic combinations)."""
    if not rule_text:
        return ""
    try:
        parts = parse_parts(normalise_rule(rule_text))
    except ValidationError:
        return rule_text  # saved before today's checks refused it: shown as it is
    freq = parts["FREQ"]
    interval = int(parts.get("INTERVAL", "1"))
    unit = _UNITS[freq]
    days = parts.get("BYDAY", "").split(",") if "BYDAY" in parts else []

    if (
        freq == "WEEKLY"
        and interval == 1
        and sorted(days) == sorted(["MO", "TU", "WE", "TH", "FR"])
    ):
        text = "every weekday"
    elif freq == "DAILY" and interval == 1 and not days:
        text = "every day"
    else:
        text = f"every {interval} {unit}s" if interval > 1 else f"every {unit}"
    if days and text != "every weekday":
        text += " on " + _join([_weekday(d) for d in days])
    if "BYMONTH" in parts:
        months = [calendar.month_name[int(m)] for m in parts["BYMONTH"].split(",")]
        text += " in " + _join(months)
    if "BYMONTHDAY" in parts:
        text += " on the " + _join([_ordinal(int(d)) for d in parts["BYMONTHDAY"].split(",")])
    if "BYYEARDAY" in parts:
        text += " on day " + _join(parts["BYYEARDAY"].split(",")) + " of the year"
    if "BYWEEKNO" in parts:
        text += " in week " + _join(parts["BYWEEKNO"].split(","))
    if "BYSETPOS" in parts:
        positions = [
            _ORDINAL_WORDS.get(int(p), _ordinal(int(p))) for p in parts["BYSETPOS"].split(",")
        ]
        text += " (the " + _join(positions) + " of those)"
    if "BYHOUR" in parts or "BYMINUTE" in parts:
        hours = parts.get("BYHOUR", "").split(",") if "BYHOUR" in parts else []
        minutes = parts.get("BYMINUTE", "").split(",") if "BYMINUTE" in parts else []
        if hours and len(minutes) <= 1:
            minute = int(minutes[0]) if minutes else 0
            text += " at " + _join([f"{int(h):02d}:{minute:02d}" for h in hours])
        elif minutes:
            text += " at minute " + _join(minutes)
    if "COUNT" in parts:
        count = int(parts["COUNT"])
        text += ", once" if count == 1 else f", {count} times"
    if "UNTIL" in parts:
        until = dt.datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%SZ")
        text += f", until {until:%B} {until.day}, {until.year}"
    return text
