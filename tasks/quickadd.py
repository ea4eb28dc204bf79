"""Quick add: one line of text to the fields of a new task.

``parse_quick_add("Pay rent every month on the 1st at 9am #Home @bills p1", user=alice)``
gives the title "Pay rent", the rule ``FREQ=MONTHLY;BYMONTHDAY=1``, the first due date (the
next 1st at 09:00 in alice's zone), the category Home, the tag bills and priority urgent.
docs/quick-add.md lists everything it understands.

How: the text is split into words (a "quoted run" is one word, kept as typed and never
read). A left-to-right scan tries the phrases below at each word; a word that no phrase
takes stays in the title. Only the words of a phrase it recognised are read as a date, so
ordinary titles are safe: "may", "mum", "sun", "on" or "Monday's" alone are not dates.

Libraries (three were evaluated):

- ``dateparser`` reads the date spans the scan found ("next friday", "5 march", "in 3
  days", "2027-01-15") in the user's zone, preferring future dates. Its ``search_dates``
  is not used: it reads "on", "may" or "mum" in ordinary titles as dates.
- ``python-dateutil`` (through ``recurrence/``) expands the rule to find a recurring task's
  first due date; ``recurrence.rules.validate_rule`` checks the rule and
  ``recurrence.describe.describe`` words it.
- ``recurrent`` 0.4.1 (2021, unmaintained) was tried and not added: it reads the whole
  string without saying which words it used, and it got "every last friday" (it dropped
  "last") and "every year on 3 march" (INTERVAL=3) wrong. The recurrence grammar needed
  here is small and maps word by word onto RRULE parts.

Times: a date without a time is due at ``settings.DEFAULT_DUE_TIME`` (09:00), or at
23:59 when that is already past today; a time without a date is the next such time; a
recurring task without a date starts at the rule's first occurrence from now.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from dateutil import rrule as du
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models.functions import Lower
from django.utils import dateformat, timezone

from recurrence.describe import describe
from recurrence.engine import upcoming
from recurrence.rules import (
    MAX_INTERVAL,
    VALIDATION_BUDGET,
    SearchBudgetSpent,
    parse_parts,
    validate_rule,
    with_budget,
)
from todo_project.timezones import from_local_naive, to_local_naive

from .models import (
    Category,
    Priority,
    RecurrenceMode,
    Tag,
    Task,
    validate_supported_datetime,
)
from .selectors import user_timezone

#: Longest text accepted: twice a task title.
MAX_TEXT_LENGTH = 500
EMPTY_TITLE_MESSAGE = "Add a title as well as dates, tags or a priority."
TONIGHT = dt.time(19, 0)
END_OF_DAY = dt.time(23, 59)

CHIP_KINDS = ("due", "repeat", "mode", "reminder", "priority", "category", "tag")

PRIORITY_WORDS = {
    "p1": Priority.URGENT,
    "p2": Priority.HIGH,
    "p3": Priority.MEDIUM,
    "p4": Priority.LOW,
    "!urgent": Priority.URGENT,
    "!high": Priority.HIGH,
    "!medium": Priority.MEDIUM,
    "!low": Priority.LOW,
}
_P_NUMBER = {Priority.URGENT: 1, Priority.HIGH: 2, Priority.MEDIUM: 3, Priority.LOW: 4}

_DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_FULL_DAYS = dict(
    zip(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        _DAY_CODES,
        strict=True,
    )
)
_SHORT_DAYS = {
    **dict(zip(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), _DAY_CODES, strict=True)),
    "tues": "TU",
    "thur": "TH",
    "thurs": "TH",
}
_DAY_NAMES = {code: name for name, code in _FULL_DAYS.items()}
# fmt: off
_MONTH_NAMES = dict(enumerate((
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
), start=1))
_NUMBER_WORDS = {"a": 1, "an": 1} | {word: number for number, word in enumerate((
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
), start=1)}
# fmt: on
#: Month names and their three-letter abbreviations (and "sept").
_MONTHS = {
    **{name: number for number, name in _MONTH_NAMES.items()},
    **{name[:3]: number for number, name in _MONTH_NAMES.items()},
    "sept": 9,
}
_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1}
_FREQ_UNITS = {
    "day": "DAILY",
    "days": "DAILY",
    "week": "WEEKLY",
    "weeks": "WEEKLY",
    "month": "MONTHLY",
    "months": "MONTHLY",
    "year": "YEARLY",
    "years": "YEARLY",
}
#: Words that repeat on their own; only after the title ("Weekly report" is a title).
_PRESETS = {
    "daily": ("DAILY", 1),
    "weekly": ("WEEKLY", 1),
    "fortnightly": ("WEEKLY", 2),
    "monthly": ("MONTHLY", 1),
    "yearly": ("YEARLY", 1),
    "annually": ("YEARLY", 1),
}
_WEEKDAYS_WORDS = {"weekday", "weekdays", "workday", "workdays"}
_WEEKEND_WORDS = {"weekend", "weekends"}
_DURATION_UNITS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("w", "week", "weeks"), "weeks"),
}
_IN_UNITS = {
    **{k: v for k, v in _DURATION_UNITS.items() if len(k) > 1},
    "month": "months",
    "months": "months",
    "year": "years",
    "years": "years",
}
_DATE_PREPOSITIONS = {"on", "by", "due", "starting"}

_TOKEN = re.compile(r'"[^"]*"|“[^”]*”|\S+')
_TRAILING = ",.;:!?)"
# Numbers are ASCII digits only (re.ASCII): "every ٣ days" or "every ³ days" stays in the
# title, as any other word it does not understand, and never reaches a rule or int().
_DIGITS = re.compile(r"\d{1,4}", re.ASCII)
_DAY_NUMBER = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?", re.ASCII)
_ORDINAL = re.compile(r"(\d{1,2})(?:st|nd|rd|th)", re.ASCII)
_YEAR = re.compile(r"\d{4}", re.ASCII)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?([ap]\.?m\.?)?", re.ASCII)
_COMPACT_DURATION = re.compile(r"(\d{1,4})(m|min|mins|h|hr|hrs|d|w)", re.ASCII)
#: Words a multi-word ``#Category name`` may have.
_MAX_CATEGORY_WORDS = 6
#: dateparser calls per scan: failed candidates ("31 april") cannot make a parse slow.
_MAX_DATE_READS = 8
#: Scans per parse, about (a repeat word found inside the title is retried as a word).
_MAX_SCANS = 3


@dataclass(frozen=True)
class Chip:
    """One recognised part, for display: ``Chip("due", "Tomorrow 18:00")``."""

    kind: str  # one of CHIP_KINDS
    label: str


@dataclass(frozen=True)
class ParsedTask:
    """What quick add read from a line of text; nothing is saved."""

    title: str
    priority: str | None  # None: not given (the task gets the default priority)
    due_date: dt.datetime | None  # aware, in ``timezone``
    timezone: str  # the user's profile time zone
    category_name: str | None  # the existing category's name, or the new one's as typed
    category: Category | None  # the user's existing category, None when new or not given
    tags: list[str]
    recurrence_rule: str
    recurrence_mode: str
    remind_at: dt.datetime | None
    remind_before: dt.timedelta | None
    parsed_at: dt.datetime = field(repr=False)  # "now" in ``timezone``, for chip labels

    @property
    def category_is_new(self) -> bool:
        return bool(self.category_name) and self.category is None

    @property
    def recurrence_description(self) -> str:
        return describe(self.recurrence_rule) if self.recurrence_rule else ""

    def occurrences(self, count: int = 5) -> list[dt.datetime]:
        """The first ``count`` due dates of a recurring task (the first is ``due_date``)."""
        if not (self.recurrence_rule and self.due_date):
            return []
        anchor = to_local_naive(self.due_date, self.timezone)
        return upcoming(self.recurrence_rule, anchor, self.timezone, start=anchor, count=count)

    def chips(self) -> list[Chip]:
        chips = []
        if self.due_date:
            chips.append(Chip("due", _when_label(self.due_date, self.parsed_at)))
        if self.recurrence_rule:
            chips.append(Chip("repeat", self.recurrence_description))
        if self.recurrence_mode == RecurrenceMode.COMPLETION:
            chips.append(Chip("mode", "after completion"))
        if self.remind_before is not None:
            chips.append(Chip("reminder", f"{_duration_label(self.remind_before)} before"))
        elif self.remind_at:
            chips.append(Chip("reminder", _when_label(self.remind_at, self.parsed_at)))
        if self.priority:
            label = f"{Priority(self.priority).label} (p{_P_NUMBER[self.priority]})"
            chips.append(Chip("priority", label))
        if self.category_name:
            new = " (new)" if self.category_is_new else ""
            chips.append(Chip("category", f"#{self.category_name}{new}"))
        chips.extend(Chip("tag", f"@{tag}") for tag in self.tags)
        return chips

    def task_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``services.task_create`` (a new category is not created)."""
        fields: dict[str, Any] = {
            "title": self.title,
            "due_date": self.due_date,
            "timezone_name": self.timezone,
            "category": self.category,
            "tags": list(self.tags),
            "recurrence_rule": self.recurrence_rule,
            "recurrence_mode": self.recurrence_mode,
            "remind_at": self.remind_at,
            "remind_before": self.remind_before,
        }
        if self.priority:
            fields["priority"] = self.priority
        return fields

    def validate(self) -> None:
        """Raise ``ValidationError`` on ``text`` if this cannot become a task."""
        if not self.title:
            raise ValidationError({"text": EMPTY_TITLE_MESSAGE})
        problems = []
        limit = Task._meta.get_field("title").max_length
        if len(self.title) > limit:
            problems.append(f"The title is longer than {limit} characters.")
        limit = Category._meta.get_field("name").max_length
        if self.category_is_new and len(self.category_name) > limit:
            problems.append(f"Category names are at most {limit} characters.")
        limit = Tag._meta.get_field("name").max_length
        problems += [
            f"Tag '@{tag[:20]}…' is longer than {limit} characters."
            for tag in self.tags
            if len(tag) > limit
        ]
        probe = Task(
            title=self.title,
            due_date=self.due_date,
            remind_at=self.remind_at,
            remind_before=self.remind_before,
        )
        for check in (
            lambda: validate_supported_datetime(self.due_date),
            lambda: validate_supported_datetime(self.remind_at),
            probe.clean,  # the model's reminder rules
        ):
            try:
                check()
            except ValidationError as exc:
                problems += exc.messages
        if problems:
            raise ValidationError({"text": problems})


def parse_quick_add(text: str, *, user, now: dt.datetime | None = None) -> ParsedTask:
    """Read ``text`` in ``user``'s time zone; ``now`` defaults to the current time.

    Reads the user's profile and, when the text has a ``#category``, their categories with
    one query. Raises ``ValidationError`` on ``text`` only for text over MAX_TEXT_LENGTH;
    call ``ParsedTask.validate()`` before creating a task.
    """
    text = text or ""
    if len(text) > MAX_TEXT_LENGTH:
        raise ValidationError(
            {"text": f"Keep it to {MAX_TEXT_LENGTH} characters (this has {len(text)})."}
        )
    zone = user_timezone(user)
    now = now or timezone.now()
    now_local = (now if timezone.is_aware(now) else now.replace(tzinfo=zone)).astimezone(zone)
    words = [
        _Word(token, "" if _is_quoted(token) else token.lower().rstrip(_TRAILING))
        for token in _TOKEN.findall(text)
    ]
    banned: set[int] = set()
    categories = _CategoryLookup(user)
    while True:
        scan = _Scan(words, zone=zone, now=now_local, categories=categories, banned=banned)
        scan.run()
        misplaced = scan.misplaced_preset()
        if misplaced is None:
            return scan.result()
        # A repeat word followed by title words is part of the title ("Weekly report").
        banned.add(misplaced)
        if len(banned) >= _MAX_SCANS:  # then none of them repeats
            banned.update(i for i, word in enumerate(words) if word.norm in _PRESETS)


# --- scanning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    text: str  # as typed
    norm: str  # lower case without trailing punctuation; "" for a quoted run


@dataclass(frozen=True)
class _When:
    day: dt.date | None = None
    exact: dt.datetime | None = None  # "in 2 hours": a local date-time, time included
    implied: dt.time | None = None  # "tonight"


def _is_quoted(token: str) -> bool:
    return len(token) >= 2 and token[0] in '"“' and token[-1] in '"”'


def _number(word: str) -> int | None:
    if _DIGITS.fullmatch(word):
        return int(word)
    return _NUMBER_WORDS.get(word)


def _weekday_codes(word: str) -> list[str]:
    """``monday`` → [MO]; ``mon,wed`` → [MO, WE]; ``mondays`` → [MO]; else []."""
    codes = []
    for part in filter(None, word.split(",")):
        code = _FULL_DAYS.get(part) or _SHORT_DAYS.get(part) or _FULL_DAYS.get(part[:-1])
        if code is None:
            return []
        codes.append(code)
    return codes


def _default_time() -> dt.time:
    return settings.DEFAULT_DUE_TIME


class _CategoryLookup:
    """The user's categories by lower-case name, read with one query for all candidates."""

    def __init__(self, user):
        self.user = user
        self.names: frozenset[str] | None = None
        self.found: dict[str, Category] = {}

    def get(self, names: list[str]) -> dict[str, Category]:
        wanted = frozenset(name.lower() for name in names)
        if wanted != self.names:  # every scan of one text asks for the same names
            self.names = wanted
            self.found = {
                category.lower_name: category
                for category in Category.objects.filter(user=self.user)
                .annotate(lower_name=Lower("name"))
                .filter(lower_name__in=wanted)
            }
        return self.found


class _Scan:
    """One left-to-right pass over the words, collecting what it recognises."""

    def __init__(self, words, *, zone, now, categories, banned):
        self.words: list[_Word] = words
        self.zone: zoneinfo.ZoneInfo = zone
        self.now: dt.datetime = now  # aware, in ``zone``
        self.categories: _CategoryLookup = categories
        self.banned: set[int] = banned  # preset words to read as title words
        self.title: list[int] = []
        self.priority: str | None = None
        self.category_name: str | None = None
        self.category: Category | None = None
        self.tags: dict[str, str] = {}
        self.rule = ""
        self.preset_at: int | None = None
        self.every_bang = False
        self.mode_at: int | None = None
        self.date: _When | None = None
        self.time: dt.time | None = None
        self.remind_before: dt.timedelta | None = None
        self.remind: tuple[_When | None, dt.time | None] | None = None
        self.reads = 0

    def norm(self, i: int) -> str:
        return self.words[i].norm if i < len(self.words) else ""

    def run(self) -> None:
        i = 0
        while i < len(self.words):
            end = (
                self._reminder(i)
                or self._recurrence(i)
                or self._mode(i)
                or self._date_or_time(i)
                or self._label(i)
            )
            if end is None:
                self.title.append(i)
                i += 1
            else:
                i = end

    def misplaced_preset(self) -> int | None:
        """The preset word ("weekly") taken for a rule although title words follow it."""
        if self.preset_at is not None and any(i > self.preset_at for i in self.title):
            return self.preset_at
        return None

    # --- phrases: each returns the index after its last word, or None --------------------

    def _label(self, i: int) -> int | None:
        word = self.words[i]
        if not word.norm:
            return None
        if word.norm in PRIORITY_WORDS and self.priority is None:
            self.priority = PRIORITY_WORDS[word.norm]
            return i + 1
        if word.norm[0] == "#" and word.norm[1:2].isalpha() and self.category_name is None:
            return self._category(i)
        if word.norm[0] == "@" and (word.norm[1:2].isalnum() or word.norm[1:2] == "_"):
            tag = word.text[1:].rstrip(_TRAILING)
            if "," in tag:  # tag names cannot contain commas: "@a,b" stays in the title
                return None
            self.tags.setdefault(tag.casefold(), tag)
            return i + 1
        return None

    def _category(self, i: int) -> int:
        """``#Home``; ``#Side project`` when the user has a category of that name."""
        parts = [self.words[i].text[1:]]
        candidates = [(i + 1, parts[0].rstrip(_TRAILING))]
        for k in range(i + 1, min(i + _MAX_CATEGORY_WORDS, len(self.words))):
            word = self.words[k]
            if not word.norm or word.norm[0] in "#@":
                break
            parts.append(word.text)
            candidates.append((k + 1, " ".join(parts).rstrip(_TRAILING)))
        existing = self.categories.get([name for _, name in candidates])
        for end, name in reversed(candidates):
            category = existing.get(name.lower())
            if category is not None:
                self.category, self.category_name = category, category.name
                return end
        self.category_name = candidates[0][1]
        return i + 1

    def _mode(self, i: int) -> int | None:
        if self.mode_at is None and (self.norm(i), self.norm(i + 1)) in (
            ("from", "completion"),
            ("after", "completion"),
        ):
            self.mode_at = i
            return i + 2
        return None

    def _date_or_time(self, i: int) -> int | None:
        if self.date is None and (found := self._date(i)):
            end, self.date = found
            return end
        if self.time is None and not (self.date and self.date.exact) and (found := self._time(i)):
            end, self.time = found
            return end
        return None

    def _reminder(self, i: int) -> int | None:
        """``remind [me] 30 minutes before`` or ``remind [me] [at] <date and/or time>``."""
        if self.norm(i) != "remind" or self.remind or self.remind_before is not None:
            return None
        j = i + 2 if self.norm(i + 1) == "me" else i + 1
        if found := self._offset(j):
            end, self.remind_before = found
            return end
        date = time = None
        while True:
            if date is None and (found := self._date(j)):
                j, date = found
            elif time is None and not (date and date.exact) and (found := self._time(j)):
                j, time = found
            else:
                break
        if date is None and time is None:
            return None
        self.remind = (date, time)
        return j

    def _offset(self, j: int) -> tuple[int, dt.timedelta] | None:
        if (match := _COMPACT_DURATION.fullmatch(self.norm(j))) and self.norm(j + 1) == "before":
            amount, unit, end = int(match[1]), match[2], j + 2
        elif (
            (amount := _number(self.norm(j))) is not None
            and (unit := self.norm(j + 1)) in _DURATION_UNITS
            and self.norm(j + 2) == "before"
        ):
            end = j + 3
        else:
            return None
        return end, dt.timedelta(**{_DURATION_UNITS[unit]: amount})

    # --- dates and times -------------------------------------------------------------------

    def _date(self, i: int) -> tuple[int, _When] | None:
        if self.norm(i) in _DATE_PREPOSITIONS:
            return self._date_phrase(i + 1, after_preposition=True)
        return self._date_phrase(i, after_preposition=False)

    def _date_phrase(self, j: int, *, after_preposition: bool) -> tuple[int, _When] | None:
        w0, w1, w2 = self.norm(j), self.norm(j + 1), self.norm(j + 2)
        if w0 in ("today", "tonight", "tomorrow", "tmr", "tmrw"):
            span = {"tonight": "today", "tmr": "tomorrow", "tmrw": "tomorrow"}.get(w0, w0)
            end = j + 1
        elif w0 == "the" and (w1, w2, self.norm(j + 3)) == ("day", "after", "tomorrow"):
            span, end = "day after tomorrow", j + 4
        elif (w0, w1, w2) == ("day", "after", "tomorrow"):
            span, end = "day after tomorrow", j + 3
        elif _ISO_DATE.fullmatch(w0):
            span, end = w0, j + 1
        elif w0 in ("next", "this") and (codes := _weekday_codes(w1)) and len(codes) == 1:
            span, end = f"{w0} {_DAY_NAMES[codes[0]]}", j + 2
        elif w0 == "next" and w1 in ("week", "month", "year"):
            span, end = f"next {w1}", j + 2
        elif w0 in _FULL_DAYS or (after_preposition and w0 in _SHORT_DAYS):
            span, end = _DAY_NAMES[_weekday_codes(w0)[0]], j + 1
        elif w0 == "in" and (n := _number(w1)) is not None and w2 in _IN_UNITS:
            found = self._read(f"in {n} {_IN_UNITS[w2]}")
            if found is None:
                return None
            if _IN_UNITS[w2] in ("minutes", "hours"):
                return j + 3, _When(exact=found.replace(second=0, microsecond=0))
            return j + 3, _When(day=found.date())
        elif found := self._day_month(j):
            end, day, month, year = found
            read = self._read(f"{day} {_MONTH_NAMES[month]} {year or ''}".strip())
            if read is None:
                return None
            today = self.now.date()
            if year is None and (read.month, read.day, read.year) == (
                today.month,
                today.day,
                today.year + 1,
            ):
                read = read.replace(year=today.year)  # "on 1 December", said on 1 December
            return end, _When(day=read.date())
        else:
            return None
        read = self._read(span)
        if read is None:
            return None
        return end, _When(day=read.date(), implied=TONIGHT if w0 == "tonight" else None)

    def _day_month(self, j: int) -> tuple[int, int, int, int | None] | None:
        """``5 march``, ``5th of march``, ``march 5th`` with an optional year."""
        w0, w1 = self.norm(j), self.norm(j + 1)
        if (match := _DAY_NUMBER.fullmatch(w0)) is not None:
            k = j + 2 if w1 == "of" else j + 1
            month = _MONTHS.get(self.norm(k))
            if month is None:
                return None
            day, end = int(match[1]), k + 1
        elif (month := _MONTHS.get(w0)) is not None and (match := _DAY_NUMBER.fullmatch(w1)):
            day, end = int(match[1]), j + 2
        else:
            return None
        year = int(self.norm(end)) if _YEAR.fullmatch(self.norm(end)) else None
        return (end if year is None else end + 1), day, month, year

    def _time(self, i: int) -> tuple[int, dt.time] | None:
        """``9am``, ``9:30 pm``, ``18:30``, ``noon``, ``midnight`` (23:59); "at" or "by" first."""
        j = i + 1 if self.norm(i) in ("at", "by") else i
        word = self.norm(j)
        if word == "noon":
            return j + 1, dt.time(12, 0)
        if word == "midnight":
            return j + 1, END_OF_DAY
        match = _CLOCK.fullmatch(word)
        if match is None:
            return None
        hour, minute, suffix, end = int(match[1]), int(match[2] or 0), match[3], j + 1
        if suffix is None and self.norm(j + 1).replace(".", "") in ("am", "pm"):
            suffix, end = self.norm(j + 1), j + 2
        if minute > 59:
            return None
        if suffix:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if suffix.startswith("p") else 0)
        elif match[2] is None or hour > 23:
            return None  # a bare number is not a time ("at 3 shops")
        return end, dt.time(hour, minute)

    def _read(self, span: str) -> dt.datetime | None:
        """dateparser's reading of a date span, as naive local time in the user's zone."""
        if self.reads >= _MAX_DATE_READS:
            return None
        self.reads += 1
        import dateparser  # takes ~0.15 s to import: loaded on first use, not at start-up

        try:
            found = dateparser.parse(
                span,
                languages=["en"],
                settings={
                    "PREFER_DATES_FROM": "future",
                    "TIMEZONE": self.zone.key,
                    "RETURN_AS_TIMEZONE_AWARE": True,
                    "RELATIVE_BASE": self.now.replace(tzinfo=None),
                },
            )
        except (ValueError, OverflowError):
            return None
        return found.astimezone(self.zone).replace(tzinfo=None) if found else None

    # --- recurrence ------------------------------------------------------------------------

    def _recurrence(self, i: int) -> int | None:
        if self.rule:
            return None
        word = self.norm(i)
        if word in _PRESETS and i not in self.banned:
            freq, interval = _PRESETS[word]
            parts = {"FREQ": freq} | ({"INTERVAL": str(interval)} if interval > 1 else {})
            end, parts = self._rule_qualifiers(i + 1, parts)
        elif word == "every" and (found := self._every(i + 1)):
            end, parts = found
        else:
            return None
        try:
            self.rule = validate_rule(";".join(f"{k}={v}" for k, v in parts.items()))
        except ValidationError:
            return None  # e.g. "every 30 february": the words stay in the title
        if word in _PRESETS:
            self.preset_at = i
        self.every_bang = self.words[i].text.lower().rstrip(",.;:") == "every!"
        return end

    def _every(self, j: int) -> tuple[int, dict[str, str]] | None:
        word = self.norm(j)
        if found := self._day_month(j):  # every 3 march, every march 3rd
            end, day, month, year = found
            if year is None:
                return end, {"FREQ": "YEARLY", "BYMONTH": str(month), "BYMONTHDAY": str(day)}
        interval = 2 if word == "other" else _number(word)
        if interval is not None:  # every other week, every 3 days, every 2 mondays
            if not 1 <= interval <= MAX_INTERVAL:  # "every 0 days" stays in the title
                return None
            word, j = self.norm(j + 1), j + 1
            every = {"INTERVAL": str(interval)} if interval > 1 else {}
            if word in _FREQ_UNITS:
                return self._rule_qualifiers(j + 1, {"FREQ": _FREQ_UNITS[word], **every})
            if found := self._weekday_list(j):
                return found[0], {"FREQ": "WEEKLY", **every, "BYDAY": ",".join(found[1])}
            return None
        if word in _FREQ_UNITS:
            return self._rule_qualifiers(j + 1, {"FREQ": _FREQ_UNITS[word]})
        if word in _WEEKDAYS_WORDS:
            return j + 1, {"FREQ": "WEEKLY", "BYDAY": "MO,TU,WE,TH,FR"}
        if word in _WEEKEND_WORDS:
            return j + 1, {"FREQ": "WEEKLY", "BYDAY": "SA,SU"}
        if found := self._weekday_list(j):
            return found[0], {"FREQ": "WEEKLY", "BYDAY": ",".join(found[1])}
        if found := self._month_position(j):
            return found[0], {"FREQ": "MONTHLY", **found[1]}
        return None

    def _rule_qualifiers(self, j: int, parts: dict[str, str]) -> tuple[int, dict[str, str]]:
        """``... on monday``, ``... on the 1st``, ``... on 3 march`` after a frequency."""
        if self.norm(j) != "on":
            return j, parts
        freq = parts["FREQ"]
        if freq == "WEEKLY" and (found := self._weekday_list(j + 1)):
            return found[0], parts | {"BYDAY": ",".join(found[1])}
        if freq == "MONTHLY" and (found := self._month_position(j + 1)):
            return found[0], parts | found[1]
        if freq == "YEARLY" and (found := self._day_month(j + 1)) and found[3] is None:
            end, day, month, _ = found
            return end, parts | {"BYMONTH": str(month), "BYMONTHDAY": str(day)}
        return j, parts

    def _weekday_list(self, j: int) -> tuple[int, list[str]] | None:
        """``monday``, ``mon, wed and fri``, ``tuesdays & thursdays``."""
        days: list[str] = []
        while codes := _weekday_codes(self.norm(j)):
            days += [code for code in codes if code not in days]
            j += 1
            if self.norm(j) in ("and", "&") and _weekday_codes(self.norm(j + 1)):
                j += 1
        return (j, days) if days else None

    def _month_position(self, j: int) -> tuple[int, dict[str, str]] | None:
        """``[the] last friday``, ``2nd tuesday``, ``last day``, ``1st and 15th`` [of the month]."""
        if self.norm(j) == "the":
            j += 1
        word = self.norm(j)
        position = _ORDINAL_WORDS.get(word)
        if position is None and (match := _ORDINAL.fullmatch(word)):
            position = int(match[1])
        if position is None:
            return None
        codes = _weekday_codes(self.norm(j + 1))
        if len(codes) == 1:
            parts, end = {"BYDAY": f"{position}{codes[0]}"}, j + 2
        elif self.norm(j + 1) == "day" and position == -1:
            parts, end = {"BYMONTHDAY": "-1"}, j + 2
        elif _ORDINAL.fullmatch(word):
            days, end = [str(position)], j + 1
            while self.norm(end) in ("and", "&") and (
                match := _ORDINAL.fullmatch(self.norm(end + 1))
            ):
                days.append(match[1])
                end += 2
            parts = {"BYMONTHDAY": ",".join(days)}
        else:
            return None
        words = [self.norm(k) for k in range(end, end + 3)]
        if words[:2] == ["of", "month"]:
            end += 2
        elif words[0] == "of" and words[1] in ("the", "every", "each") and words[2] == "month":
            end += 3
        return end, parts

    # --- the result ------------------------------------------------------------------------

    def result(self) -> ParsedTask:
        tz_name = self.zone.key
        now = self.now.replace(tzinfo=None)
        default = _default_time()
        title = list(self.title)
        if self.mode_at is not None and not self.rule:
            title += [self.mode_at, self.mode_at + 1]  # "after completion" of nothing
        due = self._due(now, default)
        remind_at = None
        if self.remind is not None:
            date, time = self.remind
            if date is not None and date.exact is not None:
                remind_at = date.exact
            elif date is not None:
                remind_at = dt.datetime.combine(date.day, time or default)
            elif due is not None:
                remind_at = dt.datetime.combine(due.date(), time)
            else:
                remind_at = _next_at(now, time)
        completion = self.rule and (self.every_bang or self.mode_at is not None)
        return ParsedTask(
            title=_tidy_title(self.words[i].text for i in sorted(title)),
            priority=self.priority,
            due_date=from_local_naive(due, tz_name) if due else None,
            timezone=tz_name,
            category_name=self.category_name,
            category=self.category,
            tags=list(self.tags.values()),
            recurrence_rule=self.rule,
            recurrence_mode=RecurrenceMode.COMPLETION if completion else RecurrenceMode.SCHEDULE,
            remind_at=from_local_naive(remind_at, tz_name) if remind_at else None,
            remind_before=self.remind_before,
            parsed_at=self.now,
        )

    def _due(self, now: dt.datetime, default: dt.time) -> dt.datetime | None:
        """The due date as naive local time."""
        if self.date is not None:
            if self.date.exact is not None:
                return self.date.exact
            time = self.time or self.date.implied or default
            if self.time and self.date.implied and self.time.hour < 12:
                time = time.replace(hour=time.hour + 12)  # "tonight at 8:30"
            due = dt.datetime.combine(self.date.day, time)
            if self.time is None and time == default and self.date.day == now.date() and due <= now:
                due = dt.datetime.combine(now.date(), END_OF_DAY)  # "today", said late
            return due
        if self.rule:
            return _first_occurrence(self.rule, _next_at(now, self.time or default))
        if self.time is not None:
            return _next_at(now, self.time)
        return None


def _tidy_title(words) -> str:
    """One space between words, no dangling dash or comma at either end."""
    return " ".join(" ".join(words).split()).strip(" ,;:-\u2013\u2014")


def _next_at(now: dt.datetime, time: dt.time) -> dt.datetime:
    """Today at ``time`` if that is still ahead, else tomorrow (naive local times)."""
    today = dt.datetime.combine(now.date(), time)
    return today if today > now else today + dt.timedelta(days=1)


def _first_occurrence(rule: str, start: dt.datetime) -> dt.datetime:
    """The rule's first matching date-time from ``start`` (its INTERVAL counts from there)."""
    body = ";".join(
        f"{name}={value}"
        for name, value in parse_parts(rule).items()
        if name not in ("INTERVAL", "COUNT", "UNTIL")
    )
    expansion = with_budget(du.rrulestr(body, dtstart=start, cache=False), VALIDATION_BUDGET)
    try:
        return expansion.after(start, inc=True) or start
    except SearchBudgetSpent:
        return start


def _when_label(value: dt.datetime, now: dt.datetime) -> str:
    """``Today 09:00``, ``Tomorrow 18:00``, ``Friday 09:00``, ``Mon 1 Mar 09:00``."""
    local = value.astimezone(now.tzinfo)
    days = (local.date() - now.date()).days
    if days == 0:
        day = "Today"
    elif days == 1:
        day = "Tomorrow"
    elif 1 < days < 7:
        day = dateformat.format(local, "l")
    else:
        day = dateformat.format(local, "D j M" if local.year == now.year else "D j M Y")
    return f"{day} {local:%H:%M}"


def _duration_label(value: dt.timedelta) -> str:
    """``1 hour``, ``30 minutes``, ``2 days``, ``90 minutes``."""
    minutes = int(value.total_seconds() // 60)
    for unit, size in (("week", 7 * 1440), ("day", 1440), ("hour", 60)):
        if minutes and minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{minutes} minute{'' if minutes == 1 else 's'}"
