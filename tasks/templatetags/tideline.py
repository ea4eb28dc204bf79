"""Template helpers for the web app: dates in the viewer's zone, relative due labels."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone

from todo_project.timezones import to_local_naive, zone_named

from ..models import Priority, RecurrenceMode

register = template.Library()


@register.filter
def get(mapping, key):
    """``{{ counts|get:"today" }}``: a dictionary value by key."""
    return mapping.get(key) if mapping else None


@register.filter
def sidebar_key(kind: str, value) -> str:
    """``"category"|sidebar_key:3`` is ``category:3``, the list's ``current`` entry."""
    return f"{kind}:{value}"


def _time(local: dt.datetime) -> str:
    return f"{local:%H:%M}"


@register.filter
def due_label(value: dt.datetime | None) -> str:
    """Today 18:00, Tomorrow 09:00, Friday 09:00, Yesterday, 3 Dec, 3 Dec 2027 (viewer's zone)."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    today = timezone.localdate()
    days = (local.date() - today).days
    if days == 0:
        day = "Today"
    elif days == 1:
        day = "Tomorrow"
    elif days == -1:
        day = "Yesterday"
    elif 1 < days < 7:
        day = f"{local:%A}"
    else:
        day = f"{local.day} {local:%b}" + (f" {local.year}" if local.year != today.year else "")
    return f"{day} {_time(local)}"


@register.filter
def is_overdue(task) -> bool:
    return bool(task.due_date and not task.completed and task.due_date < timezone.now())


@register.filter
def in_zone(value: dt.datetime | None, zone_name: str) -> dt.datetime | None:
    """The instant as naive wall-clock time in ``zone_name``, for ``|date`` to format (an
    aware value would be converted back to the viewer's zone by the template engine)."""
    if value is None or zone_named(zone_name) is None:
        return value
    return to_local_naive(value, zone_name)


@register.simple_tag
def viewer_zone() -> str:
    """The name of the zone the page shows times in (the viewer's profile zone)."""
    return timezone.get_current_timezone_name()


@register.filter
def priority_p(priority: str) -> str:
    """Todoist's notation: urgent is p1, low is p4."""
    return {"urgent": "p1", "high": "p2", "medium": "p3", "low": "p4"}.get(priority, "")


@register.simple_tag
def priority_choices() -> list[tuple[str, str]]:
    """Most urgent first, as people pick them."""
    return list(reversed(Priority.choices))


@register.filter
def recurrence_words(task) -> str:
    """The task's rule in words: "every 2 weeks on Monday and Friday", "every 3 days after
    completion"."""
    from recurrence.describe import describe
    from recurrence.series import effective_rule

    rule = effective_rule(task)
    if not rule:
        return ""
    after = " after completion" if task.recurrence_mode == RecurrenceMode.COMPLETION else ""
    return describe(rule) + after


@register.filter
def duration_words(value: dt.timedelta | None) -> str:
    """1 day, 2 hours, 30 minutes."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return ", ".join(parts) or f"{seconds} seconds"


@register.filter
def epoch_ms(value: dt.datetime | None) -> int | str:
    """Milliseconds since the epoch, as JavaScript's ``Date.parse`` reads an ISO date-time:
    a page compares a change it hears with what it shows (``data-updated``)."""
    if value is None:
        return ""
    return int(value.timestamp() * 1000)
