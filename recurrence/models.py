"""A recurring series: the rule and its anchor, independent of any one instance.

Instances are ``tasks.Task`` rows pointing at their series and recording the occurrence
they stand for, so deleting any instance (the first included) keeps the series intact.
"""

import datetime as dt

from django.conf import settings
from django.db import models


class RecurrenceSeries(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recurrence_series"
    )
    rule = models.TextField(help_text="The effective RFC 5545 RRULE (a preset is stored as one).")
    mode = models.CharField(max_length=10, default="schedule")
    timezone = models.CharField(max_length=64)
    # DTSTART as local wall-clock time in ``timezone``; empty until a due date or a
    # completion anchors a series that started without a due date.
    anchor_date = models.DateField(null=True, blank=True)
    anchor_time = models.TimeField(null=True, blank=True)
    instances_created = models.PositiveIntegerField(
        default=1, help_text="Instances spawned so far, the first included (COUNT counts these)."
    )
    ical_uid = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text="The UID of the calendar item the series was imported from: the feed's UID.",
    )
    ended = models.BooleanField(default=False)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "recurrence series"

    def __str__(self) -> str:
        return f"{self.rule} ({self.timezone})"

    @property
    def anchor(self) -> dt.datetime | None:
        """DTSTART as a naive local date-time, or None while unanchored."""
        if self.anchor_date is None:
            return None
        return dt.datetime.combine(self.anchor_date, self.anchor_time or dt.time())

    @anchor.setter
    def anchor(self, local: dt.datetime | None) -> None:
        self.anchor_date = local.date() if local else None
        self.anchor_time = local.time() if local else None
