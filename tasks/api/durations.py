"""Durations in the API as ISO 8601, out as they come in: ``PT30S``, ``P1D``, ``P1DT2H30M``.

DRF reads ISO 8601 durations (and Django's ``"1 00:00:00"``) but writes Django's own form,
so ``"remind_before": "PT30S"`` came back as ``"00:00:30"``. ``iso_duration`` writes the
shortest ISO 8601 that Django's ``parse_duration`` reads back to the same ``timedelta``.
"""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def iso_duration(value: dt.timedelta) -> str:
    """``value`` as ISO 8601 days, hours, minutes and seconds, leaving out the zero parts:
    ``PT30S``, ``P1D``, ``PT1H30M``, ``P1DT0.000007S``; ``PT0S`` for no time at all.

    Days are whole days as ``timedelta`` keeps them (``PT48H`` is read as two days and
    written ``P2D``); years, months and weeks are never written (Django does not read them).
    """
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{amount}{unit}" for amount, unit in ((hours, "H"), (minutes, "M")) if amount)
    if value.microseconds:
        time += f"{seconds}.{value.microseconds:06d}".rstrip("0") + "S"
    elif seconds:
        time += f"{seconds}S"
    days = f"{value.days}D" if value.days else ""
    if not days and not time:
        time = "0S"
    return f"{sign}P{days}" + (f"T{time}" if time else "")


@extend_schema_field(
    {
        "type": "string",
        "format": "duration",
        "example": "PT30M",
    }
)
class IsoDurationField(serializers.DurationField):
    """A duration read as DRF reads one and written as ISO 8601 (``iso_duration``)."""

    def to_representation(self, value: dt.timedelta) -> str:
        return iso_duration(value)
