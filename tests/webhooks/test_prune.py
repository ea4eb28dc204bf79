"""The delivery log keeps WEBHOOK_RETENTION_DAYS of finished deliveries."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery


def test_finished_deliveries_older_than_the_retention_are_pruned(alice, settings):
    settings.WEBHOOK_RETENTION_DAYS = 30
    endpoint = services.endpoint_create(
        user=alice, url="http://127.0.0.1:9/", event_types=["task.created"]
    )
    now = timezone.now()

    def delivery(event_id: str, state: str, age_days: int) -> WebhookDelivery:
        row = WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=event_id, event_type="task.created", body="{}", state=state
        )
        WebhookDelivery.objects.filter(pk=row.pk).update(
            created_at=now - dt.timedelta(days=age_days)
        )
        WebhookAttempt.objects.create(delivery=row, started_at=now, status_code=500)
        return row

    delivery("old-ok", "succeeded", 31)
    delivery("old-failed", "failed", 31)
    delivery("old-pending", "pending", 31)  # still to be sent: kept
    delivery("recent", "succeeded", 29)

    assert services.deliveries_prune(now=now) == 4  # two deliveries and their attempts

    kept = sorted(WebhookDelivery.objects.values_list("event_id", flat=True))
    assert kept == ["old-pending", "recent"]
    assert WebhookAttempt.objects.count() == 2
