"""Webhook endpoints and deliveries: registering, recording, sending, retrying, disabling.

A delivery moves pending → sending → succeeded (or failed, or back to pending for a retry),
each step a conditional UPDATE whose row count says who won: a duplicate event, two
consumers at once, or the sweep beside the consumer never POST twice. Network I/O (DNS at
registration, the POST, the owner's e-mail) always happens outside a transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook

from events.backoff import exponential_backoff
from events.cloudevents import CloudEvent
from events.dispatch import consumer_enabled
from events.payloads import json_value

from . import transport
from .models import (
    EVENT_TYPE_CHOICES,
    TEST_EVENT_TYPE,
    DeliveryState,
    EndpointKind,
    ReminderChannel,
    ReminderChannels,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from .safety import UnsafeURL, check_url

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
#: The role of the webhook consumers (events/routing.py), whose processes send webhooks.
WEBHOOK_ROLE = "notifications"
#: Deliveries the sweep sends per run: no unbounded work.
SWEEP_BATCH = 200
PRUNE_BATCH = 10_000


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# --- endpoints -----------------------------------------------------------------------------


def _checked_url(url: str, *, field: str = "url") -> str:
    """The URL when webhooks may go there (DNS is asked: call outside a transaction)."""
    try:
        check_url(url)
    except UnsafeURL as exc:
        raise ValidationError({field: str(exc)}) from exc
    return url


def _checked_event_types(event_types: Any) -> list[str]:
    if not isinstance(event_types, list | tuple) or not event_types:
        raise ValidationError({"event_types": "Choose at least one event type."})
    unknown = sorted({str(t) for t in event_types} - set(EVENT_TYPE_CHOICES))
    if unknown:
        raise ValidationError(
            {
                "event_types": f"Unknown event type(s): {', '.join(unknown)}. "
                f"Choose from {', '.join(EVENT_TYPE_CHOICES)}."
            }
        )
    return [t for t in EVENT_TYPE_CHOICES if t in event_types]


def endpoint_create(
    *, user, url: str, event_types: list[str], description: str = "", enabled: bool = True
) -> WebhookEndpoint:
    """Register a webhook endpoint; its ``secret`` is on the returned object, shown once."""
    kinds = _checked_event_types(event_types)
    _checked_url(url)
    with transaction.atomic():
        # Count under the user's row lock, so two requests at once cannot both pass the limit.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        count = WebhookEndpoint.objects.filter(user=user, kind=EndpointKind.WEBHOOK).count()
        if count >= settings.WEBHOOK_MAX_ENDPOINTS:
            raise ValidationError(
                {"url": f"You have {count} webhooks, the most allowed: delete one first."}
            )
        endpoint = WebhookEndpoint(
            user=user,
            kind=EndpointKind.WEBHOOK,
            url=url,
            event_types=kinds,
            description=description,
            enabled=enabled,
            secret=new_secret(),
        )
        endpoint.full_clean()
        endpoint.save()
    logger.info("webhook registered endpoint=%s user=%s", endpoint.pk, user.pk)
    return endpoint


def endpoint_update(*, endpoint: WebhookEndpoint, data: Mapping[str, Any]) -> WebhookEndpoint:
    """Change url, event types, description or ``enabled``; enabling clears the failures."""
    if "url" in data and data["url"] != endpoint.url:
        endpoint.url = _checked_url(data["url"])
    if "event_types" in data:
        endpoint.event_types = _checked_event_types(data["event_types"])
    if "description" in data:
        endpoint.description = data["description"]
    if "enabled" in data and data["enabled"] != endpoint.enabled:
        endpoint.enabled = bool(data["enabled"])
        if endpoint.enabled:
            endpoint.consecutive_failures = 0
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
        else:
            endpoint.disabled_at = timezone.now()
            endpoint.disabled_reason = "disabled by its owner"
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its delivery log; a delivery in flight finishes unrecorded."""
    endpoint.delete()


# --- reminder channels ---------------------------------------------------------------------


def reminder_channels_update(*, user, channel: str, ntfy_url: str = "") -> ReminderChannels:
    """Reminders by e-mail, webhook or both, and the ntfy topic (an empty URL removes it)."""
    if channel not in ReminderChannel.values:
        raise ValidationError({"channel": f"Choose one of {', '.join(ReminderChannel.values)}."})
    ntfy_url = ntfy_url.strip()
    if ntfy_url:
        _checked_url(ntfy_url, field="ntfy_url")
    if channel == ReminderChannel.WEBHOOK and not any(
        endpoint.wants("reminder.due")
        for endpoint in WebhookEndpoint.objects.filter(
            user=user, kind=EndpointKind.WEBHOOK, enabled=True
        )
    ):
        raise ValidationError(
            {
                "channel": "None of your enabled webhooks wants reminder.due: add one first, "
                "or keep e-mail, so reminders reach you."
            }
        )
    with transaction.atomic():
        channels, _ = ReminderChannels.objects.update_or_create(
            user=user, defaults={"channel": channel}
        )
        topics = WebhookEndpoint.objects.filter(user=user, kind=EndpointKind.NTFY)
        if not ntfy_url:
            topics.delete()
        elif not topics.filter(url=ntfy_url).update(enabled=True, consecutive_failures=0):
            topics.delete()
            WebhookEndpoint.objects.create(
                user=user,
                kind=EndpointKind.NTFY,
                url=ntfy_url,
                event_types=["reminder.due"],
                description="ntfy reminders",
                secret=new_secret(),
            )
    return channels


# --- recording deliveries ------------------------------------------------------------------


def webhook_body(*, event_type: str, timestamp: str, data: dict) -> str:
    """The JSON POSTed to a webhook, per Standard Webhooks: type, timestamp, data."""
    return json.dumps(
        {"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":")
    )


def ntfy_body(data: dict) -> str:
    """The plain text an ntfy topic shows for a due reminder."""
    due = data.get("due_at")
    return f"Reminder: {data.get('title', 'a task')}" + (f" (due {due})" if due else "")


def _wanted_by(endpoint: WebhookEndpoint, event: CloudEvent, channel: str) -> bool:
    if endpoint.kind == EndpointKind.NTFY:
        return event.event_type == "reminder.due"
    if event.event_type == "reminder.due" and channel == ReminderChannel.EMAIL:
        return False  # the user wants reminders by e-mail only
    return endpoint.wants(event.event_type)


def deliveries_record(event: CloudEvent) -> list[int]:
    """One delivery per enabled endpoint of the event's user that wants it; the ids of this
    event's deliveries still waiting to be sent.

    Rows are inserted with ON CONFLICT DO NOTHING on (endpoint, event id): a duplicate event
    or a second consumer at once adds nothing, and the claim decides who sends.
    """
    user_id = event.data.get("user_id")
    endpoints = list(WebhookEndpoint.objects.filter(user_id=user_id, enabled=True))
    if not endpoints:
        return []
    channel = (
        ReminderChannels.objects.filter(user_id=user_id).values_list("channel", flat=True).first()
        or ReminderChannel.BOTH
    )
    timestamp = str(event.raw.get("time") or json_value(timezone.now()))
    body = webhook_body(event_type=event.event_type, timestamp=timestamp, data=event.data)
    now = timezone.now()
    rows = [
        WebhookDelivery(
            endpoint=endpoint,
            event_id=event.id,
            event_type=event.event_type,
            body=ntfy_body(event.data) if endpoint.kind == EndpointKind.NTFY else body,
            next_attempt_at=now,
        )
        for endpoint in endpoints
        if _wanted_by(endpoint, event, channel)
    ]
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return list(
        WebhookDelivery.objects.filter(
            event_id=event.id, endpoint__in=endpoints, state=DeliveryState.PENDING
        ).values_list("pk", flat=True)
    )


def endpoint_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to this endpoint; the sweep sends it like any other."""
    if not endpoint.enabled:
        raise ValidationError({"enabled": "The webhook is disabled: enable it first."})
    event_id = str(uuid.uuid4())
    now = timezone.now()
    data = {"message": "A test event from Tideline.", "user_id": endpoint.user_id}
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=event_id,
        event_type=TEST_EVENT_TYPE,
        body=ntfy_body({"title": "test from Tideline"})
        if endpoint.kind == EndpointKind.NTFY
        else webhook_body(event_type=TEST_EVENT_TYPE, timestamp=json_value(now), data=data),
        next_attempt_at=now,
    )


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a finished delivery again (same ``webhook-id``, fresh attempts) via the sweep."""
    if not delivery.endpoint.enabled:
        raise ValidationError({"enabled": "The webhook is disabled: enable it first."})
    WebhookDelivery.objects.filter(
        pk=delivery.pk, state__in=[DeliveryState.SUCCEEDED, DeliveryState.FAILED]
    ).update(
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        finished_at=None,
        last_error="",
    )
    delivery.refresh_from_db()
    return delivery


# --- sending -------------------------------------------------------------------------------


def _claim(delivery_id: int, now: dt.datetime) -> bool:
    """pending → sending, for one caller. Every condition on the delivery's own row, none
    through a join: Django writes a joined filter as ``pk IN (SELECT ...)``, which
    PostgreSQL does not check again once a concurrent claim commits, so both would win."""
    enabled = WebhookEndpoint.objects.filter(enabled=True).values("pk")
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery_id, state=DeliveryState.PENDING, endpoint_id__in=enabled
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(state=DeliveryState.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )


def _finish(delivery_id: int, **fields: Any) -> bool:
    return bool(
        WebhookDelivery.objects.filter(pk=delivery_id, state=DeliveryState.SENDING).update(**fields)
    )


def signed_headers(delivery: WebhookDelivery, now: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers: the event id, this attempt's time, its signature."""
    signature = Webhook(delivery.endpoint.secret).sign(delivery.event_id, now, delivery.body)
    return {
        "Content-Type": "application/json",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def ntfy_headers(delivery: WebhookDelivery) -> dict[str, str]:
    return {"Content-Type": "text/plain; charset=utf-8", "Title": "Tideline reminder"}


def retry_delay(attempts: int, retry_after: float | None) -> dt.timedelta:
    """The wait before the next attempt: the receiver's ``Retry-After`` when it gave one,
    else the backoff; at most ``WEBHOOK_RETRY_MAX_SECONDS``."""
    cap = settings.WEBHOOK_RETRY_MAX_SECONDS
    if retry_after is not None:
        return dt.timedelta(seconds=min(retry_after, cap))
    return exponential_backoff(
        attempts, base_seconds=settings.WEBHOOK_RETRY_BASE_SECONDS, max_seconds=cap
    )


def delivery_attempt(delivery_id: int, *, now: dt.datetime | None = None) -> str:
    """POST one delivery if this caller wins the claim; the resulting state.

    Call outside any transaction: the POST waits up to ``WEBHOOK_TIMEOUT_SECONDS``.
    """
    now = now or timezone.now()
    if not _claim(delivery_id, now):
        return "not-claimed"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    headers = (
        ntfy_headers(delivery)
        if endpoint.kind == EndpointKind.NTFY
        else signed_headers(delivery, timezone.now())  # the real clock, whatever ``now`` is
    )
    result = transport.post(endpoint.url, delivery.body.encode(), headers)
    try:
        with transaction.atomic():
            WebhookAttempt.objects.create(
                delivery=delivery,
                started_at=now,
                status_code=result.status_code,
                duration_ms=result.duration_ms,
                response_excerpt=result.excerpt,
                error=result.error,
            )
    except IntegrityError:  # the endpoint was deleted during the POST: nothing to record
        logger.info("webhook deleted while delivering delivery=%s", delivery_id)
        return "deleted"
    done = now + dt.timedelta(milliseconds=result.duration_ms)
    if result.ok:
        _finish(
            delivery_id,
            state=DeliveryState.SUCCEEDED,
            finished_at=done,
            last_status_code=result.status_code,
            last_error="",
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk, consecutive_failures__gt=0).update(
            consecutive_failures=0
        )
        logger.info("webhook delivered delivery=%s endpoint=%s", delivery_id, endpoint.pk)
        return DeliveryState.SUCCEEDED
    if result.retry and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        delay = retry_delay(delivery.attempts, result.retry_after)
        _finish(
            delivery_id,
            state=DeliveryState.PENDING,
            next_attempt_at=done + delay,
            last_status_code=result.status_code,
            last_error=result.error,
        )
        logger.warning(
            "webhook attempt failed, retry in %ss delivery=%s attempt=%s error=%s",
            int(delay.total_seconds()),
            delivery_id,
            delivery.attempts,
            result.error,
        )
        return DeliveryState.PENDING
    _finish(
        delivery_id,
        state=DeliveryState.FAILED,
        finished_at=done,
        last_status_code=result.status_code,
        last_error=result.error,
    )
    logger.warning("webhook delivery failed delivery=%s error=%s", delivery_id, result.error)
    _count_failure(endpoint, result.error)
    return DeliveryState.FAILED


def _count_failure(endpoint: WebhookEndpoint, error: str) -> None:
    """One more failed delivery in a row; the one that reaches the limit disables it."""
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        reason = f"{limit} deliveries in a row failed; the last: {error}"[:300]
        disabled = WebhookEndpoint.objects.filter(
            pk=endpoint.pk, enabled=True, consecutive_failures__gte=limit
        ).update(enabled=False, disabled_at=timezone.now(), disabled_reason=reason)
        if disabled:
            logger.warning("webhook disabled endpoint=%s reason=%s", endpoint.pk, reason)
            transaction.on_commit(lambda: _tell_owner(endpoint.pk))


def _tell_owner(endpoint_id: int) -> None:
    """E-mail the owner that their endpoint was disabled (after commit; a failure is logged)."""
    endpoint = WebhookEndpoint.objects.select_related("user").filter(pk=endpoint_id).first()
    if endpoint is None or not endpoint.user.email:
        return
    try:
        send_mail(
            subject=f"Tideline disabled your webhook to {endpoint.url}"[:200],
            message=(
                f"Hello {endpoint.user.username},\n\n"
                f"Tideline stopped sending events to your webhook {endpoint.url}:\n"
                f"{endpoint.disabled_reason}\n\n"
                f"Fix the receiver, then enable the webhook again on your settings page:\n"
                f"{settings.SITE_URL}/settings/#webhooks\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[endpoint.user.email],
        )
    except Exception:  # SMTP and connection errors of every kind: the page shows it anyway
        logger.warning("could not e-mail the owner of webhook %s", endpoint_id, exc_info=True)


def deliveries_prune(*, now: dt.datetime | None = None) -> int:
    """Delete finished deliveries (with their attempts) older than ``WEBHOOK_RETENTION_DAYS``,
    at most ``PRUNE_BATCH`` per run; how many were deleted."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    old = WebhookDelivery.objects.filter(
        state__in=[DeliveryState.SUCCEEDED, DeliveryState.FAILED], created_at__lt=cutoff
    ).values_list("pk", flat=True)[:PRUNE_BATCH]
    deleted, _ = WebhookDelivery.objects.filter(pk__in=list(old)).delete()
    return deleted


def deliveries_sweep(*, now: dt.datetime | None = None) -> int:
    """The periodic pass (``events.runtime.SCHEDULE``): release stale claims, send what is
    due (retries, redeliveries, test events). Returns how many it attempted.

    Only in a process serving the consumers' role (``notifications``): the schedule runs
    role-bound work in every process serving a role, and only that role's pods may reach
    the internet (k8s/base/networkpolicies.yaml).
    """
    if not consumer_enabled(WEBHOOK_ROLE):
        return 0
    now = now or timezone.now()
    lease = now - dt.timedelta(seconds=settings.WEBHOOK_SENDING_LEASE_SECONDS)
    WebhookDelivery.objects.filter(state=DeliveryState.SENDING, claimed_at__lt=lease).update(
        state=DeliveryState.PENDING, next_attempt_at=now
    )
    due = list(
        WebhookDelivery.objects.filter(
            state=DeliveryState.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for delivery_id in due:
        delivery_attempt(delivery_id, now=now)
    return len(due)
