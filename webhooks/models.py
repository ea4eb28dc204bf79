"""Webhook endpoints, their deliveries (one per endpoint and event) and each try of one.

Deliveries change state with conditional UPDATEs whose row count says who won, like reminder
deliveries (``notifications.models``): a duplicate event or two consumers at once make one
row and one POST.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

#: What an endpoint can ask for: the task events and due reminders.
EVENT_TYPE_CHOICES = (
    "task.created",
    "task.updated",
    "task.completed",
    "task.deleted",
    "reminder.due",
)
#: The event type of "Send test event": sent to the one endpoint, whatever it asked for.
TEST_EVENT_TYPE = "webhook.test"


class EndpointKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (Standard Webhooks, signed JSON)"
    NTFY = "ntfy", "ntfy topic (plain-text push of reminders)"


class WebhookEndpoint(models.Model):
    """A URL of the user's that hears the event types it asked for, signed with ``secret``.

    The user's ntfy topic (the reminder push channel) is an endpoint of kind ``ntfy``, at
    most one per user, so it is delivered, retried, logged and guarded the same way.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    kind = models.CharField(max_length=10, choices=EndpointKind.choices, default="webhook")
    url = models.URLField(max_length=2000)
    event_types = models.JSONField(default=list)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100, help_text="whsec_<base64>: shown once")
    enabled = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(kind="ntfy"), name="one_ntfy_topic_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.url} of {self.user_id}"

    def wants(self, event_type: str) -> bool:
        return event_type in self.event_types


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its first or next attempt
    SENDING = "sending", "Sending"  # claimed by one process, which is POSTing it
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event to one endpoint. ``(endpoint, event_id)`` is unique: the idempotency key."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.CharField(max_length=255, help_text="The CloudEvent id: `webhook-id`.")
    event_type = models.CharField(max_length=50)
    body = models.TextField(help_text="Exactly what is POSTed and signed, on every attempt.")
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="one_delivery_per_endpoint_and_event"
            )
        ]
        indexes = [
            models.Index(
                fields=["state", "next_attempt_at"],
                name="webhook_delivery_open",
                condition=Q(state__in=["pending", "sending"]),
            ),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} to endpoint {self.endpoint_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what came back, how long it took, or why it failed."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    started_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"attempt of delivery {self.delivery_id}: {self.status_code or self.error}"


class ReminderChannel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"
    BOTH = "both", "E-mail and webhook"


class ReminderChannels(models.Model):
    """How the user's reminders go out; no row: the default, both."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminder_channels"
    )
    channel = models.CharField(
        max_length=10, choices=ReminderChannel.choices, default=ReminderChannel.BOTH
    )

    class Meta:
        verbose_name_plural = "reminder channels"

    def __str__(self) -> str:
        return f"reminders of {self.user_id} by {self.channel}"
