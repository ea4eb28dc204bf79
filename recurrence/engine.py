"""Expanding a series' rule into occurrences, in the series' local wall-clock time.

Rules are expanded over *naive local* date-times anchored on DTSTART (the first instance's
due date as wall-clock time in the task's zone), then each occurrence is placed in the
zone: a 09:00 America/New_York task stays at 09:00 across DST changes. A local time in a
spring-forward gap moves forward by the gap; an ambiguous autumn time takes the first.

Every series ends at the end of the supported date-times (``SUPPORTED_END``) at the
latest, as if its UNTIL said so, and an UNTIL outside them is read as the nearest end: no
occurrence is ever one a task could not be saved with, and no conversion overflows.
Finding the next instance examines at most ``EXPANSION_BUDGET`` candidate instants.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

from dateutil import rrule as du

from todo_project.timezones import (
    SUPPORTED_END,
    clamp_to_supported,
    from_local_naive,
    localize,
    to_local_naive,
)

from .rules import (
    EXPANSION_BUDGET,
    SearchBudgetSpent,
    normalise_rule,
    parse_parts,
    validate_rule,
    with_budget,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedRule:
    """A rule split for local expansion: COUNT kept apart, UNTIL turned into local time."""

    body: str  # the rule without COUNT and UNTIL
    count: int | None
    until_utc: dt.datetime | None

    @classmethod
    def parse(cls, text: str) -> ParsedRule:
        rule = normalise_rule(text)
        parts = parse_parts(rule)
        count = int(parts.pop("COUNT")) if "COUNT" in parts else None
        until = None
        if "UNTIL" in parts:
            until = dt.datetime.strptime(parts.pop("UNTIL"), "%Y%m%dT%H%M%SZ").replace(
                tzinfo=dt.UTC
            )
            until = clamp_to_supported(until)
        return cls(";".join(f"{k}={v}" for k, v in parts.items()), count, until)

    def rrule(self, anchor: dt.datetime, tz_name: str, *, budget: int | None = None) -> du.rrule:
        """The expansion from ``anchor``, ending at UNTIL or the supported range's end."""
        until_local = to_local_naive(self.until_utc or SUPPORTED_END, tz_name)
        rule = du.rrulestr(self.body, dtstart=anchor, cache=False).replace(until=until_local)
        return rule if budget is None else with_budget(rule, budget)


class Occurrences(list):
    """Occurrences in order; ``cut_off`` says the search budget ran out before the end."""

    cut_off: bool = False


def iter_occurrences(
    rule: str, anchor: dt.datetime, tz_name: str, *, budget: int | None = None
) -> Iterator[dt.datetime]:
    """Every occurrence of a series as naive local time; DTSTART always comes first.

    RFC 5545: DTSTART counts as the first occurrence even when the rule does not match it,
    and COUNT includes it. With a ``budget``, raises ``SearchBudgetSpent`` once that many
    candidate instants were examined.
    """
    parsed = ParsedRule.parse(rule)
    if parsed.until_utc and from_local_naive(anchor, tz_name) > parsed.until_utc:
        yield anchor
        return
    expansion = parsed.rrule(anchor, tz_name, budget=budget)
    series = itertools.chain([anchor], _after(expansion, anchor))
    for emitted, occurrence in enumerate(series, start=1):
        yield occurrence
        if parsed.count is not None and emitted >= parsed.count:
            return


def _after(rule: du.rrule, anchor: dt.datetime) -> Iterator[dt.datetime]:
    for occurrence in rule:
        if occurrence > anchor:
            yield occurrence


def next_scheduled(
    rule: str, anchor: dt.datetime, tz_name: str, *, after: dt.datetime
) -> dt.datetime | None:
    """``schedule`` mode: the first occurrence of the series strictly after ``after``.

    None when the series has ended, or when no occurrence is found within the budget.
    """
    parsed = ParsedRule.parse(rule)
    try:
        if parsed.count is None:
            if after < anchor:
                return anchor
            return parsed.rrule(anchor, tz_name, budget=EXPANSION_BUDGET).after(after, inc=False)
        for occurrence in iter_occurrences(rule, anchor, tz_name, budget=EXPANSION_BUDGET):
            if occurrence > after:
                return occurrence
    except SearchBudgetSpent:
        _budget_spent(rule, anchor, tz_name)
    return None


def first_on_rule(rule: str, start: dt.datetime, tz_name: str) -> dt.datetime | None:
    """The first date-time at or after ``start`` (naive local time) that the rule's parts
    match, at ``start``'s time of day unless the rule sets one: a first due date that starts
    a series on its rule. RFC 5545 counts any DTSTART as the first occurrence, so a series
    "on the 1st of each month" given a due date on the 5th would be due on the 5th first.

    The interval counts from the first due date, so it is left out of the search: "every
    other Thursday" from a Friday starts on the next Thursday, not the one after. None when
    nothing matches within the search budget.
    """
    parsed = ParsedRule.parse(rule)
    parts = dict(part.split("=", 1) for part in parsed.body.split(";"))
    parts.pop("INTERVAL", None)
    every = ParsedRule(";".join(f"{k}={v}" for k, v in parts.items()), None, parsed.until_utc)
    try:
        return every.rrule(start, tz_name, budget=EXPANSION_BUDGET).after(start, inc=True)
    except SearchBudgetSpent:
        return None


def next_after_completion(
    rule: str,
    anchor: dt.datetime,
    tz_name: str,
    *,
    completed_local: dt.datetime,
    instances_so_far: int,
) -> dt.datetime | None:
    """``completion`` mode ("every!"): re-anchor on the completion day at the series' time.

    The next instance is the first occurrence strictly after that new anchor. COUNT still
    counts the series' instances and UNTIL still ends it.
    """
    parsed = ParsedRule.parse(rule)
    if parsed.count is not None and instances_so_far >= parsed.count:
        return None
    new_anchor = dt.datetime.combine(completed_local.date(), anchor.time())
    try:
        return parsed.rrule(new_anchor, tz_name, budget=EXPANSION_BUDGET).after(
            new_anchor, inc=False
        )
    except SearchBudgetSpent:
        _budget_spent(rule, new_anchor, tz_name)
        return None


def _budget_spent(rule: str, anchor: dt.datetime, tz_name: str) -> None:
    """A rule saved before today's checks can be too sparse to search: its series ends."""
    logger.warning(
        "next occurrence not found within %s candidates rule=%s anchor=%s zone=%s",
        EXPANSION_BUDGET,
        rule,
        anchor.isoformat(),
        tz_name,
    )


def upcoming(
    rule: str, anchor: dt.datetime, tz_name: str, *, start: dt.datetime, count: int
) -> Occurrences:
    """Up to ``count`` occurrences from ``start`` (inclusive), as aware local date-times.

    At most ``EXPANSION_BUDGET`` candidate instants are examined: a rule whose occurrences
    are further apart than that gives fewer, with ``cut_off`` set.
    """
    found = Occurrences()
    try:
        for occurrence in iter_occurrences(rule, anchor, tz_name, budget=EXPANSION_BUDGET):
            if occurrence >= start:
                found.append(from_local_naive(occurrence, tz_name))
                if len(found) >= count:
                    break
    except SearchBudgetSpent:
        found.cut_off = True
    return found


def recurrence_preview(*, rule: str, start: dt.datetime, tz_name: str, count: int) -> Occurrences:
    """The first ``count`` occurrences of a rule not saved yet, starting at ``start`` (DTSTART).

    A naive ``start`` is wall-clock time in ``tz_name`` (a known zone); the occurrences are
    aware, in that zone. Raises ``ValidationError`` saying what is wrong with the rule.
    """
    start = localize(start, tz_name)
    validate_rule(rule, dtstart=start.astimezone(zoneinfo.ZoneInfo(tz_name)))
    anchor = to_local_naive(start, tz_name)
    return upcoming(rule, anchor, tz_name, start=anchor, count=count)
