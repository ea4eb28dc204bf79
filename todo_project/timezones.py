"""Wall-clock time in a named zone: the one copy of the conversions every app uses.

A task's date-times are instants (aware, stored in UTC) that people read and type as local
wall-clock time in the task's own zone. Going from wall-clock time to an instant, a time in
a spring-forward gap moves forward by the gap and an ambiguous autumn time takes the first
of its two instants (``fold=0``), wherever the conversion happens: the task services, the
recurrence engine, quick add, the task form.

Two limits apply everywhere (README, "Limits"):

* The zones people may choose (``supported_zones``): the IANA zones of the geographic
  areas (``Europe/Paris``, ``America/Argentina/Salta``...), ``UTC`` (and ``Etc/UTC``, its
  canonical IANA name) and the fixed offsets ``Etc/GMT+12``...``Etc/GMT-14``. Left out:
  ``localtime`` and ``posixrules`` (copies of the host's files), ``Factory`` (no offset at
  all), ``posix/``, ``right/`` (leap-second clocks) and the old aliases kept by IANA's
  ``backward`` file (``US/Eastern``, ``GB``, ``EST5EDT``...). Only new input is checked:
  rows saved with another zone the host can load still render and can be edited.
* The supported date-times (``SUPPORTED_START`` to ``SUPPORTED_END``, years 1000 to 9000
  in UTC): far enough from the ends of Python's calendar (years 1 and 9999) that moving an
  instant to any zone, or a few periods of a series on, cannot overflow.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo

#: First and last supported instants (UTC); every stored date-time lies between them.
SUPPORTED_YEARS = (1000, 9000)
SUPPORTED_START = dt.datetime(SUPPORTED_YEARS[0], 1, 1, tzinfo=dt.UTC)
SUPPORTED_END = dt.datetime(SUPPORTED_YEARS[1], 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)

#: The geographic areas of the IANA database (its ``zone1970.tab`` names start with these).
_AREAS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)
_FIXED_OFFSET = re.compile(r"Etc/GMT[+-](?:[1-9]|1[0-4])", re.ASCII)


@functools.cache
def supported_zones() -> frozenset[str]:
    """The time zones a task or profile may be given (see the module's docstring)."""
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name.split("/", 1)[0] in _AREAS
        or name in ("UTC", "Etc/UTC")
        or _FIXED_OFFSET.fullmatch(name)
    )


def clamp_to_supported(instant: dt.datetime) -> dt.datetime:
    """An aware ``instant`` moved into the supported date-times (e.g. an RRULE's UNTIL)."""
    return min(max(instant, SUPPORTED_START), SUPPORTED_END)


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


def format_in_zone(instant: dt.datetime, tz_name: str) -> str:
    """An instant as an operator reads it: wall-clock time in the named zone, the zone named,
    ``2026-12-05 09:00 (Europe/Berlin)`` (seconds only when there are some). A zone the host
    cannot load is shown as UTC, named so."""
    zone = zone_named(tz_name)
    if zone is None:
        zone, tz_name = zoneinfo.ZoneInfo("UTC"), "UTC"
    local = instant.astimezone(zone)
    shape = "%Y-%m-%d %H:%M:%S" if local.second or local.microsecond else "%Y-%m-%d %H:%M"
    return f"{local.strftime(shape)} ({tz_name})"
