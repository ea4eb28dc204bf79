"""Driving a series the way production does: complete, relay, find the spawned instance."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from unittest import mock

from events.relay import relay_pending
from tasks.models import Task
from tasks.services import task_complete

NEW_YORK = "America/New_York"


def at(stamp: str, tz_name: str = NEW_YORK) -> dt.datetime:
    """``"1997-09-02 09:00"`` (or a bare date, meaning 09:00) as an aware local date-time."""
    text = stamp if " " in stamp else f"{stamp} 09:00"
    naive = dt.datetime.strptime(text, "%Y-%m-%d %H:%M")
    return naive.replace(tzinfo=zoneinfo.ZoneInfo(tz_name))


def wall_clock(stamps: list[str]) -> list[dt.datetime]:
    """Stamps as naive wall-clock date-times (bare dates mean 09:00)."""
    return [at(stamp).replace(tzinfo=None) for stamp in stamps]


def local_due(task: Task) -> dt.datetime:
    """The task's due date as local wall-clock time in the task's own zone."""
    return task.due_date.astimezone(zoneinfo.ZoneInfo(task.timezone))


def complete(task: Task, *, when: dt.datetime | None = None) -> Task:
    """Complete through the service (as the API does); ``when`` freezes the completion time."""
    task = Task.objects.get(pk=task.pk)
    if when is None:
        return task_complete(task=task)
    with mock.patch("django.utils.timezone.now", return_value=when.astimezone(dt.UTC)):
        return task_complete(task=task)


def spawned_from(task: Task) -> Task | None:
    """The one instance spawned from ``task``, if any (never more than one)."""
    children = list(Task.objects.filter(parent=task))
    assert len(children) <= 1, f"{len(children)} instances spawned from task {task.pk}"
    return children[0] if children else None


def complete_and_relay(task: Task, *, when: dt.datetime | None = None) -> Task | None:
    """Complete ``task``, deliver the outbox in-process, return the instance it spawned."""
    complete(task, when=when)
    relay_pending()
    return spawned_from(task)


def follow_series(first: Task, *, limit: int) -> tuple[list[dt.datetime], Task]:
    """Complete instance after instance until ``limit`` due dates or the series ends.

    Returns every due date (the first included) as aware local time in the task's zone,
    and the last instance reached (completed only if the series ended before ``limit``).
    """
    dues = [local_due(first)]
    task = first
    while len(dues) < limit:
        spawned = complete_and_relay(task)
        if spawned is None:
            break
        dues.append(local_due(spawned))
        task = spawned
    return dues, task
