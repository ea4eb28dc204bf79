"""Operators see endpoints and deliveries in the admin, never a signing secret."""

from __future__ import annotations

from webhooks import services
from webhooks.models import WebhookDelivery


def test_the_admin_pages_load_without_the_secret(admin_client, alice):
    endpoint = services.endpoint_create(
        user=alice, url="http://127.0.0.1:9/", event_types=["task.created"]
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id="e1", event_type="task.created", body="{}"
    )
    pages = [
        "/admin/webhooks/webhookendpoint/",
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/",
        "/admin/webhooks/webhookdelivery/",
        f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert endpoint.secret not in response.content.decode(), page
