"""The settings page's Webhooks section: add an endpoint and see its secret once, open its
delivery log, send a test event, redeliver, delete; choose the reminder channels."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from events.relay import relay_pending
from tests.web.html import cells, flash, parse, unlabelled_controls
from tests.webhooks.helpers import deliveries
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint

SETTINGS = reverse("settings")
ADD = reverse("webhook-create")


@pytest.fixture
def signed_in(client, alice) -> Client:
    client.force_login(alice)
    return client


def add(signed_in, receiver, events=("task.created", "task.completed")):
    return signed_in.post(
        ADD, {"url": receiver.url(), "event_types": list(events), "description": "My receiver"}
    )


def test_the_section_offers_the_forms_with_every_control_labelled(signed_in):
    response = signed_in.get(SETTINGS)

    page = parse(response)
    assert page.get("webhooks-heading").text == "Webhooks"
    assert "You have no webhooks." in page.text
    assert page.find("form", action=ADD)
    assert page.find("form", action=reverse("reminder-channels-update"))
    assert unlabelled_controls(response) == []


def test_adding_a_webhook_shows_its_secret_once(signed_in, alice, receiver):
    response = add(signed_in, receiver)

    assert response.status_code == 201
    endpoint = WebhookEndpoint.objects.get(user=alice)
    assert parse(response).get("new-webhook-secret").attrs["value"] == endpoint.secret
    assert endpoint.event_types == ["task.created", "task.completed"]
    again = signed_in.get(SETTINGS)
    assert endpoint.secret not in again.content.decode()
    assert cells(again, f"webhook-{endpoint.pk}") == [
        f"{receiver.url()}My receiver",
        "task.created, task.completed",
        "Enabled",
        "Deliveries",
    ]


def test_an_internal_address_is_refused_beside_the_url(signed_in, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    response = signed_in.post(ADD, {"url": "http://127.0.0.1/x", "event_types": ["task.created"]})

    assert response.status_code == 400
    assert "loopback" in parse(response).get("id_url_error").text
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_shows_attempts_and_test_and_redeliver_work(
    signed_in, alice, receiver, api
):
    add(signed_in, receiver)
    endpoint = WebhookEndpoint.objects.get(user=alice)
    receiver.secret = endpoint.secret
    detail = reverse("webhook-detail", args=[endpoint.pk])

    response = signed_in.post(reverse("webhook-test", args=[endpoint.pk]), follow=True)
    assert flash(response) == ["A test event is on its way: reload to see how it went."]
    services.deliveries_sweep()
    [test] = deliveries(endpoint.pk)
    row = cells(signed_in.get(detail), f"delivery-{test.pk}")
    assert row[0].startswith("webhook.test")
    assert row[1] == "Succeeded"
    assert "HTTP 204" in row[2]

    response = signed_in.post(
        reverse("webhook-redeliver", args=[endpoint.pk, test.pk]), follow=True
    )
    assert flash(response) == ["The delivery is on its way again: reload to see how it went."]
    services.deliveries_sweep()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [test.event_id] * 2
    assert all(r.verified for r in receiver.requests)


def test_another_users_webhook_page_is_a_404(signed_in, bob, receiver):
    theirs = services.endpoint_create(user=bob, url=receiver.url(), event_types=["task.created"])
    assert signed_in.get(reverse("webhook-detail", args=[theirs.pk])).status_code == 404
    assert signed_in.post(reverse("webhook-test", args=[theirs.pk])).status_code == 404
    assert signed_in.post(reverse("webhook-delete", args=[theirs.pk])).status_code == 404


def test_deleting_a_webhook_asks_first(signed_in, alice, receiver):
    add(signed_in, receiver)
    endpoint = WebhookEndpoint.objects.get(user=alice)
    url = reverse("webhook-delete", args=[endpoint.pk])

    assert "Delete the webhook to" in parse(signed_in.get(url)).text
    response = signed_in.post(url, follow=True)
    assert flash(response) == [f"The webhook to {receiver.url()} was deleted."]
    assert not WebhookEndpoint.objects.exists()


def test_a_disabled_webhook_can_be_enabled_again(signed_in, alice, receiver, api):
    add(signed_in, receiver)
    endpoint = WebhookEndpoint.objects.get(user=alice)
    services.endpoint_update(endpoint=endpoint, data={"enabled": False})
    detail = reverse("webhook-detail", args=[endpoint.pk])
    assert "Disabled" in parse(signed_in.get(detail)).text

    signed_in.post(reverse("webhook-enable", args=[endpoint.pk]))
    api.post("/api/tasks/", {"title": "Heard"}, format="json")
    relay_pending()
    assert len(receiver.requests) == 1


def test_choosing_the_reminder_channels(signed_in, receiver):
    add(signed_in, receiver, events=["reminder.due"])
    response = signed_in.post(
        reverse("reminder-channels-update"),
        {"channel": "webhook", "ntfy_url": receiver.url("/topic")},
        follow=True,
    )
    assert flash(response) == ["Reminder channels saved."]
    page = parse(response)
    assert "checked" in page.get("id_channel_1").attrs  # "Webhook"
    assert page.get("id_ntfy_url").attrs["value"] == receiver.url("/topic")
    assert "Pushes to the ntfy topic" in page.text


#: GET /settings/: session, user, profile (time zone, then the form), feed token; the
#: webhooks section: channel, ntfy topic, endpoints; the sidebar: counts, categories, tags,
#: saved views; the live view's cursor.
SETTINGS_QUERIES = 13


@pytest.mark.parametrize("n", [1, 8])
def test_the_settings_page_runs_the_same_queries_for_1_and_8_webhooks(
    signed_in, alice, django_assert_num_queries, n
):
    for _ in range(n):
        services.endpoint_create(
            user=alice, url="http://127.0.0.1:9/", event_types=["task.created"]
        )
    signed_in.get(SETTINGS)  # the profile is made on the first visit
    with django_assert_num_queries(SETTINGS_QUERIES):
        signed_in.get(SETTINGS)


#: GET /settings/webhooks/<id>/: session, user, profile (time zone), endpoint, log,
#: attempts; the sidebar: counts, categories, tags, saved views; the live view's cursor.
LOG_QUERIES = 11


@pytest.mark.parametrize("n", [1, 20])
def test_the_delivery_log_page_runs_the_same_queries_for_1_and_20(
    signed_in, alice, django_assert_num_queries, n
):
    endpoint = services.endpoint_create(
        user=alice, url="http://127.0.0.1:9/", event_types=["task.created"]
    )
    for i in range(n):
        WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=f"e{i}", event_type="task.created", body="{}"
        )
    with django_assert_num_queries(LOG_QUERIES):
        signed_in.get(reverse("webhook-detail", args=[endpoint.pk]))
