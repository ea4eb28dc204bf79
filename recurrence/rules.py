"""Parsing and validating RFC 5545 RRULEs (python-dateutil does the expansion).

A rule is checked part by part first, so every error names what is wrong, then handed to
dateutil and searched for an occurrence within a bounded horizon and a bounded number of
candidate instants (``SearchBudget``), so validating any rule costs milliseconds, never the
seconds an unbounded search for an impossible or very sparse rule takes.
"""

from __future__ import annotations

import datetime as dt
import re

from dateutil import rrule as du
from django.core.exceptions import ValidationError

from todo_project.timezones import zone_named

MAX_RULE_LENGTH = 500
MAX_COUNT = 10_000
MAX_INTERVAL = 1_000
#: How far ahead validation looks for a first occurrence (covers Feb 29 on a Monday: 28 y).
SEARCH_HORIZON = dt.timedelta(days=366 * 30)
#: Candidate instants validation may examine looking for a first occurrence (about 12 ms):
#: the horizon's days of a DAILY or YEARLY rule with one time of day fit in it.
VALIDATION_BUDGET = 12_000
#: Candidate instants listing a series' occurrences may examine (about 0.25 s).
EXPANSION_BUDGET = 200_000

FREQUENCIES = ("MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Digits are ASCII only (re.ASCII: Python's \d and int() also take Arabic-Indic digits).
_BYDAY_ITEM = re.compile(r"^([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$", re.ASCII)
_UNTIL_UTC = re.compile(r"^\d{8}T\d{6}Z$", re.ASCII)
_WHOLE_NUMBER = re.compile(r"\d{1,9}", re.ASCII)
_SIGNED_NUMBER = re.compile(r"[+-]?\d{1,9}", re.ASCII)
_INTEGER_LIST_RANGES = {
    "BYSECOND": (0, 60, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
KNOWN_PARTS = {"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYDAY", "WKST", *_INTEGER_LIST_RANGES}

PRESET_FREQUENCIES = {
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "yearly": "YEARLY",
}


def normalise_rule(text: str) -> str:
    """Strip an ``RRULE:`` prefix and white space, upper-case the rule."""
    text = (text or "").strip()
    if text[:6].upper() == "RRULE:":
        text = text[6:]
    return text.strip().rstrip(";").upper()


def preset_rule(recurrence_type: str, interval: int = 1) -> str:
    """The RRULE of a simple preset (``weekly`` every ``interval`` weeks), '' for none."""
    freq = PRESET_FREQUENCIES.get(recurrence_type)
    if freq is None:
        return ""
    return f"FREQ={freq}" if interval == 1 else f"FREQ={freq};INTERVAL={interval}"


def parse_parts(rule: str) -> dict[str, str]:
    """Split a normalised rule into its parts, checking each; raises ValidationError."""
    if len(rule) > MAX_RULE_LENGTH:
        raise ValidationError(f"The rule is longer than {MAX_RULE_LENGTH} characters.")
    _check_ascii(rule)
    if not rule:
        raise ValidationError("The rule is empty.")
    parts: dict[str, str] = {}
    for chunk in rule.split(";"):
        name, sep, value = chunk.partition("=")
        if not sep or not name or not value:
            raise ValidationError(f"'{chunk}' is not a NAME=VALUE rule part.")
        if name not in KNOWN_PARTS:
            raise ValidationError(f"'{name}' is not an RRULE part.")
        if name in parts:
            raise ValidationError(f"{name} is given more than once.")
        parts[name] = value
    _check_parts(parts)
    return parts


def _check_ascii(text: str) -> None:
    """RFC 5545 rules are ASCII: an Arabic-Indic or superscript 3 is refused, never read as 3."""
    if not text.isascii():
        odd = next(char for char in text if not char.isascii())
        raise ValidationError(
            f"The rule may use only ASCII letters, digits and punctuation; '{odd}' is not."
        )


def _check_parts(parts: dict[str, str]) -> None:
    freq = parts.get("FREQ")
    if freq is None:
        raise ValidationError("FREQ is required (e.g. FREQ=WEEKLY).")
    if freq not in FREQUENCIES:
        raise ValidationError(f"FREQ must be one of {', '.join(FREQUENCIES)}; got '{freq}'.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValidationError("COUNT and UNTIL cannot be used together (RFC 5545).")
    for name, upper in (("COUNT", MAX_COUNT), ("INTERVAL", MAX_INTERVAL)):
        if name in parts:
            value = parts[name]
            if not _WHOLE_NUMBER.fullmatch(value) or not 1 <= int(value) <= upper:
                raise ValidationError(f"{name} must be a whole number from 1 to {upper}.")
    if "UNTIL" in parts and not _UNTIL_UTC.match(parts["UNTIL"]):
        raise ValidationError(
            "UNTIL must be a UTC date-time such as 20261231T235959Z (RFC 5545 requires UTC "
            "when the start has a time zone)."
        )
    if "WKST" in parts and parts["WKST"] not in WEEKDAYS:
        raise ValidationError(f"WKST must be one of {', '.join(WEEKDAYS)}.")
    if "BYDAY" in parts:
        for item in parts["BYDAY"].split(","):
            match = _BYDAY_ITEM.match(item)
            if not match:
                raise ValidationError(f"BYDAY value '{item}' is not a weekday such as MO or 1FR.")
            if match.group(2):
                ordinal = int(match.group(2))
                if freq not in ("MONTHLY", "YEARLY"):
                    raise ValidationError(
                        f"BYDAY '{item}' has a position, allowed only with MONTHLY or YEARLY."
                    )
                if not 1 <= ordinal <= 53:
                    raise ValidationError(f"BYDAY position in '{item}' must be 1 to 53.")
                if ordinal > 5 and (freq == "MONTHLY" or "BYMONTH" in parts):
                    raise ValidationError(
                        f"BYDAY position in '{item}' counts within a month: 1 to 5."
                    )
    for name, (low, high, signed) in _INTEGER_LIST_RANGES.items():
        if name not in parts:
            continue
        for item in parts[name].split(","):
            if not _SIGNED_NUMBER.fullmatch(item):
                raise ValidationError(f"{name} value '{item}' is not a number.")
            number = int(item)
            magnitude = abs(number) if signed else number
            if (number < 0 and not signed) or not low <= magnitude <= high:
                bounds = f"±{low}..{high}" if signed else f"{low}..{high}"
                raise ValidationError(f"{name} value '{item}' is outside {bounds}.")
    if "BYSETPOS" in parts and len(parts) == 2 + ("INTERVAL" in parts) + ("WKST" in parts):
        raise ValidationError("BYSETPOS needs another BYxxx part to select from.")


_PERIOD_DAYS = {
    "MINUTELY": 1 / 1440,
    "HOURLY": 1 / 24,
    "DAILY": 1,
    "WEEKLY": 7,
    "MONTHLY": 31,
    "YEARLY": 366,
}
_LATEST_START = dt.datetime(9990, 1, 1, tzinfo=dt.UTC)


def search_horizon(parts: dict[str, str]) -> dt.timedelta:
    """SEARCH_HORIZON, or three whole periods of a long INTERVAL."""
    period = _PERIOD_DAYS[parts["FREQ"]] * int(parts.get("INTERVAL", "1"))
    return max(SEARCH_HORIZON, dt.timedelta(days=3 * period))


class _HorizonReached(Exception):
    """A bounded probe went past its horizon without finding an occurrence."""


class SearchBudgetSpent(Exception):
    """An expansion examined its budget of candidate instants; the rule needs more."""


class SearchBudget:
    """How many candidate instants an expansion may still examine.

    dateutil scans a rule period by period (a year for YEARLY, a day or one step for
    DAILY and finer) and tests every day of the period against each time of the rule, so a
    period costs its days times its times, plus its BYSETPOS lookups. MINUTELY and HOURLY
    also step through a day looking for an allowed hour: each new day they reach costs a
    whole day of steps. ``spend`` raises ``SearchBudgetSpent`` before the period is scanned.
    """

    def __init__(self, limit: int) -> None:
        self.left = limit
        self._day: int | None = None

    def charge(self, rule: du.rrule, day_ordinal: int, days: int) -> None:
        freq, interval = rule._freq, rule._interval
        cost = days * (_times_per_step(rule) + len(rule._bysetpos or ()))
        if freq in _STEPS_PER_DAY and day_ordinal != self._day:
            self._day = day_ordinal
            cost += max(1, _STEPS_PER_DAY[freq] // interval)
        self.left -= cost
        if self.left < 0:
            raise SearchBudgetSpent


_STEPS_PER_DAY = {du.HOURLY: 24, du.MINUTELY: 24 * 60}


def _times_per_step(rule: du.rrule) -> int:
    """The times of day dateutil tries on each day of one period."""
    if rule._freq == du.HOURLY:
        return len(rule._byminute or (0,)) * len(rule._bysecond or (0,))
    if rule._freq == du.MINUTELY:
        return len(rule._bysecond or (0,))
    return max(1, len(rule._timeset or ()))


class _BoundedIterinfo(du._iterinfo):
    """dateutil's calendar masks, plus the stops of a bounded expansion.

    dateutil checks UNTIL only when the rule yields something, so a rule that never occurs
    is scanned up to the year 9999: seconds for DAILY and finer. dateutil rebuilds these
    masks for every new month it scans (every period for MONTHLY and YEARLY), so a probe
    carrying ``_scan_horizon`` stops there; and it asks them for every period's days, so
    an rrule carrying ``_search_budget`` is charged for each period before it is scanned.
    Other rules are expanded exactly as before.
    (No ``__slots__`` here: dateutil initialises the parent's slots by listing them.)
    """

    def rebuild(self, year, month):
        horizon = getattr(self.rrule, "_scan_horizon", None)
        if horizon is not None and (year, month) > horizon:
            raise _HorizonReached
        return super().rebuild(year, month)

    def _charged(self, dayset):
        budget = getattr(self.rrule, "_search_budget", None)
        if budget is not None:
            _, start, end = dayset
            budget.charge(self.rrule, self.yearordinal + start, end - start)
        return dayset

    def ydayset(self, year, month, day):
        return self._charged(super().ydayset(year, month, day))

    def mdayset(self, year, month, day):
        return self._charged(super().mdayset(year, month, day))

    def wdayset(self, year, month, day):
        return self._charged(super().wdayset(year, month, day))

    def ddayset(self, year, month, day):
        return self._charged(super().ddayset(year, month, day))


du._iterinfo = _BoundedIterinfo


def with_budget(rule: du.rrule, limit: int) -> du.rrule:
    """``rule`` made to raise ``SearchBudgetSpent`` past ``limit`` candidate instants."""
    rule._search_budget = SearchBudget(limit)
    return rule


def build_rrule(rule: str, dtstart: dt.datetime) -> du.rrule:
    """A dateutil rrule for a rule already checked by ``parse_parts``."""
    try:
        return du.rrulestr(rule, dtstart=dtstart, forceset=False, cache=False)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"Invalid rule: {exc}.") from exc


def validate_rule(text: str, *, dtstart: dt.datetime | None = None) -> str:
    """Check a rule and return it normalised; ``ValidationError`` says what is wrong."""
    _check_ascii(text or "")  # before upper-casing, which turns a dotless i into an I
    rule = normalise_rule(text)
    parts = parse_parts(rule)
    start = dtstart or dt.datetime(2000, 1, 3, 9, 0, tzinfo=dt.UTC)
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    parsed = build_rrule(rule, start)
    # Bounded existence check: look for one occurrence within the horizon only, which
    # grows with a long INTERVAL (FREQ=YEARLY;INTERVAL=31 first recurs after 31 years).
    reach = search_horizon(parts)
    horizon = start + reach if _LATEST_START - start > reach else _LATEST_START
    probe = with_budget(parsed.replace(count=None, until=horizon), VALIDATION_BUDGET)
    probe._scan_horizon = (horizon.year, horizon.month)
    try:
        found = probe.after(start, inc=False)
    except _HorizonReached:
        found = None
    except SearchBudgetSpent:
        raise ValidationError(
            "This rule needs too much searching to find its occurrences: no date is found "
            f"within {VALIDATION_BUDGET:,} candidate date-times. Use a coarser FREQ (DAILY "
            "rather than MINUTELY) or fewer BYxxx conditions."
        ) from None
    except ValueError as exc:  # e.g. BYSECOND=60 with MINUTELY, found while expanding
        raise ValidationError(f"Invalid rule: {exc}.") from exc
    if found is None:
        raise ValidationError("This rule never produces an occurrence (e.g. 30 February).")
    return rule


def validate_task_recurrence(task) -> None:
    """Validate and normalise a task's recurrence fields in place."""
    if task.recurrence_rule and task.recurrence_type not in ("", "none"):
        raise ValidationError(
            {"recurrence_rule": "Give either recurrence_rule or recurrence_type, not both."}
        )
    if not task.recurrence_rule:
        return
    zone = zone_named(task.timezone)  # an unknown zone is full_clean()'s to report
    start = task.due_date.astimezone(zone).replace(second=0) if task.due_date and zone else None
    try:
        task.recurrence_rule = validate_rule(task.recurrence_rule, dtstart=start)
    except ValidationError as exc:
        raise ValidationError({"recurrence_rule": exc.messages}) from exc
