"""Helpers of the webhook tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from webhooks.models import WebhookDelivery, WebhookEndpoint

ALL_EVENTS = ["task.created", "task.updated", "task.completed", "task.deleted", "reminder.due"]


def register(api, receiver, *, event_types=None, path="/hook", host="127.0.0.1", **fields) -> dict:
    """Register ``receiver`` through the API; the receiver then verifies with its secret."""
    response = api.post(
        "/api/webhooks/",
        {
            "url": receiver.url(path, host=host),
            "event_types": event_types or ALL_EVENTS,
            **fields,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    receiver.secret = response.json()["secret"]
    return response.json()


def deliveries(endpoint_id: int) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(endpoint_id=endpoint_id).order_by("id"))


def endpoint(endpoint_id: int) -> WebhookEndpoint:
    return WebhookEndpoint.objects.get(pk=endpoint_id)


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)
