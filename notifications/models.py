"""Reminder deliveries: the single source of truth for "was this reminder sent"."""

from django.db import models
from django.db.models import Q

from todo_project.timezones import format_in_zone


class DeliveryState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    DUE = "due", "Due"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"
    MISSED = "missed", "Missed"
    FAILED = "failed", "Failed"


class ReminderDelivery(models.Model):
    """One reminder of one task at one time. State changes are conditional UPDATEs."""

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="deliveries")
    remind_at = models.DateTimeField()
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.SCHEDULED
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True, help_text="When it became due.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    detail = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "reminder deliveries"
        constraints = [
            models.UniqueConstraint(fields=["task", "remind_at"], name="one_delivery_per_time")
        ]
        indexes = [
            models.Index(
                fields=["state", "remind_at"],
                name="delivery_open",
                condition=Q(state__in=["scheduled", "due", "sending"]),
            )
        ]

    def __str__(self) -> str:
        """The time in the task's zone when the task is loaded (the admin loads it), else in
        UTC; named either way."""
        loaded = type(self).task.is_cached(self)
        when = format_in_zone(self.remind_at, self.task.timezone if loaded else "UTC")
        return f"Reminder for task {self.task_id} at {when} ({self.state})"
