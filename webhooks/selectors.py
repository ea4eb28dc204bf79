"""Reads of webhooks: always starting from the user."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from .models import (
    EndpointKind,
    ReminderChannel,
    ReminderChannels,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


def endpoint_list(*, user) -> QuerySet[WebhookEndpoint]:
    """The user's webhook endpoints (not the ntfy topic), oldest first."""
    return WebhookEndpoint.objects.filter(user=user, kind=EndpointKind.WEBHOOK).order_by(
        "created_at", "id"
    )


def endpoint_any(*, user) -> QuerySet[WebhookEndpoint]:
    """Every endpoint of the user's, the ntfy topic too (its log and test event)."""
    return WebhookEndpoint.objects.filter(user=user)


def delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """The endpoint's delivery log, newest first, each with its attempts."""
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .prefetch_related(
            Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("started_at", "id"))
        )
        .order_by("-created_at", "-id")
    )


def ntfy_topic_get(*, user) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(user=user, kind=EndpointKind.NTFY).first()


def reminder_channels(*, user) -> dict[str, str]:
    """``channel`` (e-mail, webhook or both: the default, when the user never chose) and
    ``ntfy_url`` (empty: none)."""
    channel = ReminderChannels.objects.filter(user=user).values_list("channel", flat=True).first()
    topic = ntfy_topic_get(user=user)
    return {"channel": channel or ReminderChannel.BOTH, "ntfy_url": topic.url if topic else ""}
