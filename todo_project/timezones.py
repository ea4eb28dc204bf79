"""Wall-clock time in a named zone: the one copy of the conversions every app uses.

A task's date-times are instants (aware, stored in UTC) that people read and type as local
wall-clock time in the task's own zone. Going from wall-clock time to an instant, a time in
a spring-forward gap moves forward by the gap and an ambiguous autumn time takes the first
of its two instants (``fold=0``), wherever the conversion happens: the task services, the
recurrence engine, quick add, the task form.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo


def zone_named(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone called ``name``, or None for an empty or unknown name."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def to_local_naive(instant: dt.datetime, tz_name: str) -> dt.datetime:
    """An aware instant as naive wall-clock time in ``tz_name`` (seconds kept)."""
    return instant.astimezone(zoneinfo.ZoneInfo(tz_name)).replace(tzinfo=None)


def from_local_naive(local: dt.datetime, tz_name: str) -> dt.datetime:
    """Naive wall-clock time in ``tz_name`` to an aware instant (gap → forward, fold → first)."""
    zone = zoneinfo.ZoneInfo(tz_name)
    return local.replace(tzinfo=zone, fold=0).astimezone(dt.UTC).astimezone(zone)


def localize(value: dt.datetime | None, tz_name: str) -> dt.datetime | None:
    """Read a naive date-time as wall-clock time in ``tz_name``; aware ones are kept.

    An unknown zone leaves the value as it is, for the caller's validation to report.
    """
    if value is None or value.tzinfo is not None or zone_named(tz_name) is None:
        return value
    return from_local_naive(value, tz_name)
