"""A user's pending tasks as an iCalendar (RFC 5545) feed, built with ``icalendar``.

Each task is a ``VTODO`` (or, for calendars that ignore to-dos, a ``VEVENT`` of each dated
task). A recurring series is one component: its current pending instance, carrying the
series' UID and RRULE from that instance on, so a calendar shows the occurrences
``/api/tasks/{id}/occurrences/`` lists. The choices are explained in docs/calendar-feed.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import icalendar
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import path, reverse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, quote_etag
from django.views.decorators.http import require_safe
from icalendar import Alarm, Calendar, Event, Todo, vRecur

from recurrence.engine import iter_occurrences
from recurrence.rules import EXPANSION_BUDGET, SearchBudgetSpent, normalise_rule, parse_parts
from recurrence.series import effective_rule
from todo_project.timezones import to_local_naive

from . import selectors
from .models import Priority, RecurrenceMode, Task

PRODID = "-//Tideline//Tasks feed//EN"
#: RFC 5545 3.8.1.9: 1 is the highest priority, 9 the lowest (0: undefined, never used).
ICAL_PRIORITY = {Priority.URGENT: 1, Priority.HIGH: 3, Priority.MEDIUM: 5, Priority.LOW: 9}
#: SEQUENCE is the seconds from this instant to the task's last change: it grows with every
#: change (and with every new instance of a series) and fits RFC 5545's 32-bit integer
#: until 2088.
SEQUENCE_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


#: Part of every ETag: a change to how the feed is written must change every ETag.
FEED_FORMAT = "1"


@dataclass(frozen=True)
class _Schedule:
    start: dt.datetime  # aware, in the zone the series is kept in
    rule: str  # the RRULE from ``start`` on; '' for a task that does not repeat


def feed_tasks(*, user, events: bool) -> list[Task]:
    """What the feed lists: the user's pending tasks (dated ones for events), a series once."""
    return _one_per_series(selectors.feed_tasks(user=user, dated_only=events))


def feed_etag(tasks: list[Task], *, user, events: bool, base_url: str) -> str:
    """A digest of everything the feed is built from: each task's columns and its category's,
    series' and tags', the owner's name, the kind, the site's address and the format. A poll
    whose feed did not change is answered 304 without building the feed (reading is about a
    fifth of a build)."""
    digest = hashlib.sha256(
        repr((FEED_FORMAT, icalendar.__version__, user.get_username(), events, base_url)).encode()
    )
    for task in tasks:
        tags = sorted((tag.pk, tag.name) for tag in task.tags.all())
        digest.update(
            repr((_columns(task), _columns(task.category), _columns(task.series), tags)).encode()
        )
    return digest.hexdigest()


def _columns(row) -> tuple | None:
    return (
        None if row is None else tuple(getattr(row, f.attname) for f in row._meta.concrete_fields)
    )


def build_feed(tasks: list[Task], *, user, events: bool, task_url: Callable[[Task], str]) -> bytes:
    """The feed of ``tasks`` (``feed_tasks``): VTODOs, or with ``events`` VEVENTs."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"Tideline: {user.get_username()}")
    for task in tasks:
        calendar.add_component(_component(task, events=events, url=task_url(task)))
    starts = [task.due_date for task in tasks if task.due_date is not None]
    if starts:
        earliest = min(starts).date() - dt.timedelta(days=366)
        calendar.add_missing_timezones(first_date=min(earliest, dt.date(1970, 1, 1)))
    return calendar.to_ical()


def _one_per_series(tasks: Iterable[Task]) -> list[Task]:
    """Every task, except that a series appears once: its earliest pending instance (a
    later pending one is an occurrence of that instance's RRULE anyway)."""
    first: dict[int, Task] = {}
    for task in tasks:
        if task.series_id is None:
            continue
        kept = first.get(task.series_id)
        if kept is None or _instant(task) < _instant(kept):
            first[task.series_id] = task
    return [task for task in tasks if task.series_id is None or first[task.series_id] is task]


def _instant(task: Task) -> dt.datetime:
    return task.occurrence or task.due_date or task.created_at


def _component(task: Task, *, events: bool, url: str) -> Todo | Event:
    component = Event() if events else Todo()
    component.add("uid", feed_uid(task))
    component.add("dtstamp", task.updated_at)
    component.add("last-modified", task.updated_at)
    component.add("created", task.created_at)
    component.add("sequence", int((task.updated_at - SEQUENCE_EPOCH).total_seconds()))
    component.add("summary", task.title)
    if task.description:
        component.add("description", task.description)
    component.add("priority", ICAL_PRIORITY[task.priority])
    categories = ([task.category.name] if task.category else []) + sorted(
        tag.name for tag in task.tags.all()
    )
    if categories:
        component.add("categories", categories)
    component.add("url", url)
    if not events:
        component.add("status", "NEEDS-ACTION")
    if task.due_date is not None:
        schedule = _schedule(task)
        component.add("dtstart", schedule.start)
        if not events:
            component.add("due", schedule.start)
        if schedule.rule:
            component.add("rrule", vRecur.from_ical(schedule.rule))
    alarm = _alarm(task)
    if alarm is not None:
        component.add_component(alarm)
    return component


#: The UIDs the feed makes up for what was not imported (``feed_uid``), and how an import
#: recognises them (``feed_uid_owner``).
_SERIES_UID = "series-{}@tideline"
_TASK_UID = "task-{}@tideline"
_OWN_UID = re.compile(r"(series|task)-([0-9]{1,18})@tideline")


def feed_uid(task: Task) -> str:
    """The component's UID, stable per series: a repeating task's is its series' (what an
    import brought, else ``series-<id>@tideline``), any other's is its own (what an import
    brought, else ``task-<id>@tideline``)."""
    if task.series_id and effective_rule(task):
        return task.series.ical_uid or _SERIES_UID.format(task.series_id)
    return task.ical_uid or _TASK_UID.format(task.pk)


def feed_uid_owner(uid: str) -> tuple[str, int] | None:
    """``("series", id)`` or ``("task", id)`` for a UID the feed made up, else None."""
    match = _OWN_UID.fullmatch(uid)
    return (match[1], int(match[2])) if match else None


def _schedule(task: Task) -> _Schedule:
    """Where the component starts and the RRULE from there on, expanded as the series is
    (``recurrence.series.task_upcoming``): from its anchor, in its zone. A series repeating
    after completion gets no RRULE: its next date depends on when this one is done."""
    rule = effective_rule(task)
    series = task.series
    if series is not None and series.anchor is not None:
        anchor, tz_name = series.anchor, series.timezone
    else:
        anchor, tz_name = to_local_naive(task.due_date, task.timezone), task.timezone
    zone = zoneinfo.ZoneInfo(tz_name)
    current = to_local_naive(task.occurrence or task.due_date, tz_name)
    plain = _Schedule(task.due_date.astimezone(zone), "")
    if not rule or task.recurrence_mode == RecurrenceMode.COMPLETION:
        return plain
    try:
        parts = parse_parts(normalise_rule(rule))
        before, start = 0, None
        for occurrence in iter_occurrences(rule, anchor, tz_name, budget=EXPANSION_BUDGET):
            if occurrence >= current:
                start = occurrence
                break
            before += 1
    except (ValidationError, SearchBudgetSpent):
        return plain  # a rule refused today, or no occurrence found: this instance alone
    if start is None:
        return plain
    if "COUNT" in parts:  # COUNT counts from the anchor; the feed starts later
        parts["COUNT"] = str(int(parts["COUNT"]) - before)
    return _Schedule(start.replace(tzinfo=zone), ";".join(f"{k}={v}" for k, v in parts.items()))


def _alarm(task: Task) -> Alarm | None:
    """A display alarm: ``remind_before`` before the start; ``remind_at`` as the same offset
    from the due date (so it repeats with the series), or at that instant when undated."""
    if task.remind_before is not None and task.due_date is not None:
        trigger: dt.timedelta | dt.datetime = -task.remind_before
    elif task.remind_at is not None:
        due = task.due_date
        trigger = task.remind_at - due if due else task.remind_at.astimezone(dt.UTC)
    else:
        return None
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", task.title)
    alarm.add("trigger", trigger)
    return alarm


def feed_url(request: HttpRequest, secret: str) -> str:
    """The feed's absolute URL for this secret."""
    return request.build_absolute_uri(reverse("task-feed", args=[secret]))


#: ``?events=`` values: VEVENTs of dated tasks, or VTODOs (the default).
EVENTS_CHOICES = {"1": True, "true": True, "0": False, "false": False}


@require_safe
def task_feed(request: HttpRequest, secret: str) -> HttpResponse:
    """The feed at its secret URL, for calendar apps: no login, the secret is the
    credential (unknown or revoked: 404). ``ETag``/``Last-Modified`` answer a poll whose
    feed did not change with a 304."""
    user = selectors.feed_owner_for_secret(secret=secret)
    if user is None:
        raise Http404("No such feed.")
    events = EVENTS_CHOICES.get(request.GET.get("events", "0").lower())
    if events is None:
        return HttpResponseBadRequest("events: give 1 (events) or 0 (to-dos).")
    tasks = feed_tasks(user=user, events=events)
    response = HttpResponse(content_type="text/calendar; charset=utf-8")
    response["ETag"] = quote_etag(
        feed_etag(tasks, user=user, events=events, base_url=request.build_absolute_uri("/"))
    )
    changed = max((task.updated_at for task in tasks), default=None)
    last_modified = int(changed.timestamp()) if changed else None
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified)
    response["Cache-Control"] = "private, no-cache"
    response["Content-Disposition"] = 'inline; filename="tasks.ics"'
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    conditional = get_conditional_response(
        request, etag=response["ETag"], last_modified=last_modified, response=response
    )
    if conditional is not response:  # 304 (or 412): the feed is not built
        return conditional
    response.content = build_feed(
        tasks,
        user=user,
        events=events,
        task_url=lambda task: request.build_absolute_uri(reverse("task-detail", args=[task.pk])),
    )
    return response


urlpatterns = [path("feeds/<str:secret>/tasks.ics", task_feed, name="task-feed")]
