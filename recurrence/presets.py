"""The task form's recurrence presets ("every weekday", "monthly on the second Tuesday"),
turned into RRULEs and recognised again in a stored rule.

A preset that depends on the day (monthly on the 14th, on the second Tuesday) takes it from
the due date, as wall-clock time in the task's zone. A stored rule is shown as a preset only
when that preset, built from the same due date, gives back exactly the same rule; anything
else is a custom rule, so showing a task and saving it unchanged never rewrites its rule.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError

from todo_project.timezones import clamp_to_supported, from_local_naive, to_local_naive

from .rules import WEEKDAYS, normalise_rule, parse_parts

NONE = "none"
DAILY = "daily"
WEEKDAYS_PRESET = "weekdays"
WEEKLY = "weekly"
MONTHLY_DAY = "monthly_day"
MONTHLY_WEEKDAY = "monthly_weekday"
YEARLY = "yearly"
CUSTOM = "custom"
PRESETS = (NONE, DAILY, WEEKDAYS_PRESET, WEEKLY, MONTHLY_DAY, MONTHLY_WEEKDAY, YEARLY, CUSTOM)

#: Presets whose rule is taken from the due date's day.
DAY_PRESETS = (MONTHLY_DAY, MONTHLY_WEEKDAY)

END_NEVER = "never"
END_COUNT = "count"
END_UNTIL = "until"

WORKING_DAYS = ("MO", "TU", "WE", "TH", "FR")
_FREQ = {
    DAILY: "DAILY",
    WEEKDAYS_PRESET: "WEEKLY",
    WEEKLY: "WEEKLY",
    MONTHLY_DAY: "MONTHLY",
    MONTHLY_WEEKDAY: "MONTHLY",
    YEARLY: "YEARLY",
}
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
#: The last second of an "until" day, in the task's zone.
_END_OF_DAY = dt.time(23, 59, 59)


@dataclass(frozen=True)
class RecurrenceChoice:
    """What the form's recurrence fields say."""

    preset: str = NONE
    interval: int = 1
    weekdays: tuple[str, ...] = ()
    custom_rule: str = ""
    end: str = END_NEVER
    count: int | None = None
    until: dt.date | None = None


def nth_weekday(day: dt.date) -> str:
    """The BYDAY item of a day's weekday in its month: ``2TU``, or ``-1FR`` for the last one."""
    weekday = WEEKDAYS[day.weekday()]
    if day.day + 7 > calendar.monthrange(day.year, day.month)[1]:
        return f"-1{weekday}"
    return f"{(day.day - 1) // 7 + 1}{weekday}"


def nth_weekday_words(day: dt.date) -> str:
    """ "second Tuesday", "last Friday"."""
    item = nth_weekday(day)
    return f"{_ORDINALS[int(item[:-2])]} {calendar.day_name[day.weekday()]}"


def until_utc(until: dt.date, tz_name: str) -> str:
    """An UNTIL for the end of a local day, in UTC as RFC 5545 requires."""
    local = dt.datetime.combine(until, _END_OF_DAY)
    return from_local_naive(local, tz_name).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _sorted_days(days) -> list[str]:
    return sorted(set(days), key=WEEKDAYS.index)


def build_rule(choice: RecurrenceChoice, *, due_local: dt.datetime | None, tz_name: str) -> str:
    """The RRULE a choice stands for ('' when it does not repeat).

    ``due_local`` is the due date as wall-clock time in ``tz_name``. Raises ValidationError
    when the preset needs a due date it does not have. A custom rule is returned normalised
    but not validated: the service does that, with the due date as DTSTART.
    """
    if choice.preset == NONE:
        return ""
    if choice.preset == CUSTOM:
        rule = normalise_rule(choice.custom_rule)
        if not rule:
            raise ValidationError("Enter a rule, e.g. FREQ=WEEKLY;BYDAY=MO,TH.")
        return rule
    if choice.preset not in _FREQ:
        raise ValidationError(f"'{choice.preset}' is not a repeat option.")
    parts = [f"FREQ={_FREQ[choice.preset]}"]
    if choice.interval != 1:
        parts.append(f"INTERVAL={choice.interval}")
    if choice.preset == WEEKDAYS_PRESET:
        parts.append("BYDAY=" + ",".join(WORKING_DAYS))
    elif choice.preset == WEEKLY and choice.weekdays:
        parts.append("BYDAY=" + ",".join(_sorted_days(choice.weekdays)))
    elif choice.preset == MONTHLY_DAY and due_local is not None:
        parts.append(f"BYMONTHDAY={due_local.day}")
    elif choice.preset == MONTHLY_WEEKDAY:
        if due_local is None:
            raise ValidationError("Set a due date: the weekday of the month comes from it.")
        parts.append(f"BYDAY={nth_weekday(due_local.date())}")
    if choice.end == END_COUNT and choice.count:
        parts.append(f"COUNT={choice.count}")
    elif choice.end == END_UNTIL and choice.until:
        parts.append(f"UNTIL={until_utc(choice.until, tz_name)}")
    return ";".join(parts)


def _canonical(parts: dict[str, str]) -> dict[str, str]:
    if "BYDAY" in parts:
        items = parts["BYDAY"].split(",")
        if all(item in WEEKDAYS for item in items):
            parts = {**parts, "BYDAY": ",".join(_sorted_days(items))}
    return parts


def _builds(
    choice: RecurrenceChoice, parts: dict[str, str], due_local: dt.datetime | None, tz_name: str
) -> bool:
    try:
        built = build_rule(choice, due_local=due_local, tz_name=tz_name)
    except ValidationError:
        return False
    return _canonical(parse_parts(built)) == parts


def choice_from_rule(rule: str, *, due_local: dt.datetime | None, tz_name: str) -> RecurrenceChoice:
    """The preset that builds exactly this rule from this due date, else a custom rule.

    A bare ``FREQ=MONTHLY`` (the API's ``recurrence_type`` "monthly") repeats on its first
    instance's day, so it is shown as "monthly on the day" too.
    """
    rule = normalise_rule(rule)
    if not rule:
        return RecurrenceChoice()
    custom = RecurrenceChoice(preset=CUSTOM, custom_rule=rule)
    try:
        parts = _canonical(parse_parts(rule))
    except ValidationError:
        return custom
    base = RecurrenceChoice(interval=int(parts.get("INTERVAL", "1")))
    if "COUNT" in parts:
        base = replace(base, end=END_COUNT, count=int(parts["COUNT"]))
    elif "UNTIL" in parts:
        instant = dt.datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        instant = clamp_to_supported(instant)  # UNTIL=99991231T235959Z: the range's end
        base = replace(base, end=END_UNTIL, until=to_local_naive(instant, tz_name).date())
    body = {k: v for k, v in parts.items() if k not in ("INTERVAL", "COUNT", "UNTIL")}
    if body == {"FREQ": "MONTHLY"}:
        return replace(base, preset=MONTHLY_DAY)
    days = tuple(parts["BYDAY"].split(",")) if "BYDAY" in parts else ()
    plain_days = days if all(day in WEEKDAYS for day in days) else ()
    for preset in (DAILY, WEEKDAYS_PRESET, WEEKLY, MONTHLY_DAY, MONTHLY_WEEKDAY, YEARLY):
        candidate = replace(base, preset=preset, weekdays=plain_days if preset == WEEKLY else ())
        if _builds(candidate, parts, due_local, tz_name):
            return candidate
    return custom
