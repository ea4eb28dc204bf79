"""Keeping a task's series in step with its recurrence fields, and computing what is next.

Called by ``tasks.services`` inside their transactions; nothing here emits events. The
recurrence package never imports ``tasks``: a task is passed in and read by its fields.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from todo_project.timezones import from_local_naive, to_local_naive

from .engine import Occurrences, next_after_completion, next_scheduled, upcoming
from .models import RecurrenceSeries
from .rules import normalise_rule, parse_parts, preset_rule

logger = logging.getLogger(__name__)

#: Task fields that make a different rule (as opposed to moving the series in time).
RULE_FIELDS = {"recurrence_rule", "recurrence_type", "recurrence_interval", "recurrence_mode"}

#: Task fields whose change re-anchors the series on the edited pending instance.
SERIES_FIELDS = (
    "recurrence_rule",
    "recurrence_type",
    "recurrence_interval",
    "recurrence_mode",
    "timezone",
    "due_date",
)


def effective_rule(task) -> str:
    """The task's RRULE, or the one its preset (daily/weekly/...) stands for."""
    return task.recurrence_rule or preset_rule(task.recurrence_type, task.recurrence_interval)


def series_start(task) -> None:
    """Give a recurring task a new series anchored on its due date (or none yet)."""
    rule = effective_rule(task)
    if not rule:
        task.series = None
        task.occurrence = None
        return
    series = RecurrenceSeries(
        user_id=task.user_id,
        rule=rule,
        mode=task.recurrence_mode,
        timezone=task.timezone,
        ical_uid=task.ical_uid,
    )
    if task.due_date is not None:
        series.anchor = to_local_naive(task.due_date, task.timezone)
    series.save()
    task.series = series
    task.occurrence = task.due_date


def series_end(series: RecurrenceSeries | None) -> None:
    if series is not None and not series.ended:
        series.ended = True
        series.ended_at = timezone.now()
        series.save(update_fields=["ended", "ended_at"])


def series_follow_edit(task, changed_fields: set[str]) -> None:
    """An edit of a pending instance's recurrence applies from that instance on.

    Clearing the recurrence ("stop repeating") ends the series; any other change to the
    rule, mode, zone or due date starts a new series anchored on this instance. When only
    the due date or zone moved, the new series continues the old one's COUNT.
    """
    if task.completed or not changed_fields & set(SERIES_FIELDS):
        return
    previous = task.series
    if not effective_rule(task):
        series_end(previous)
        return
    if previous is not None and changed_fields <= {"due_date"} and previous.anchor is None:
        previous.anchor = to_local_naive(task.due_date, task.timezone) if task.due_date else None
        previous.save(update_fields=["anchor_date", "anchor_time"])
        task.occurrence = task.due_date
        return
    series_end(previous)
    series_start(task)
    if previous is not None and not changed_fields & RULE_FIELDS:
        _continue_count(task.series, previous)


def series_count_instance(series: RecurrenceSeries) -> None:
    """One more instance spawned (COUNT counts these), as one UPDATE."""
    RecurrenceSeries.objects.filter(pk=series.pk).update(
        instances_created=F("instances_created") + 1
    )


def _continue_count(series: RecurrenceSeries, previous: RecurrenceSeries) -> None:
    """A moved instance is not a new series: the instances before it still count."""
    earlier = previous.instances_created - 1
    series.instances_created = previous.instances_created
    parts = parse_parts(normalise_rule(series.rule))
    if series.mode == "schedule" and "COUNT" in parts and earlier:
        parts["COUNT"] = str(max(1, int(parts["COUNT"]) - earlier))
        series.rule = ";".join(f"{name}={value}" for name, value in parts.items())
    series.save(update_fields=["instances_created", "rule"])


def next_occurrence(task, *, completed_at: dt.datetime) -> dt.datetime | None:
    """When the instance after ``task`` is due, or None when the series is exhausted.

    A series whose stored rule today's checks refuse (saved before them) ends here too:
    completing its instance must still work.
    """
    series = task.series
    if series is None or series.ended:
        return None
    try:
        parse_parts(normalise_rule(series.rule))
    except ValidationError as exc:
        logger.warning("series rule refused, series ends series=%s: %s", series.pk, exc)
        return None
    tz_name = series.timezone
    completed_local = to_local_naive(completed_at, tz_name)
    anchor = series.anchor or completed_local.replace(microsecond=0)
    if series.mode == "completion":
        local = next_after_completion(
            series.rule,
            anchor,
            tz_name,
            completed_local=completed_local,
            instances_so_far=series.instances_created,
        )
    else:
        current = to_local_naive(task.occurrence, tz_name) if task.occurrence else anchor
        local = next_scheduled(series.rule, anchor, tz_name, after=current)
    return from_local_naive(local, tz_name) if local else None


def task_upcoming(task, *, count: int) -> Occurrences:
    """This instance's occurrence and the ones after it, as the series would schedule them."""
    rule = effective_rule(task)
    if not rule or task.due_date is None:
        return Occurrences()
    series = task.series
    if series is not None and series.anchor is not None:
        anchor, tz_name = series.anchor, series.timezone
    else:
        anchor, tz_name = to_local_naive(task.due_date, task.timezone), task.timezone
    start = to_local_naive(task.occurrence or task.due_date, tz_name)
    return upcoming(rule, anchor, tz_name, start=start, count=count)
