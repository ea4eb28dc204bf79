"""/api/webhooks/: per user, the secret shown once, clear 400s, pinned query counts."""

from __future__ import annotations

import pytest
from django.utils import timezone

from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery

URL = "http://127.0.0.1:9/hook"  # loopback, admitted by the tests' allow-list; never called


def make_endpoint(user, url: str = URL, **fields):
    fields.setdefault("event_types", ["task.created"])
    return services.endpoint_create(user=user, url=url, **fields)


def test_the_secret_is_answered_once_at_registration(api):
    created = api.post(
        "/api/webhooks/",
        {"url": URL, "event_types": ["task.created", "reminder.due"], "description": "CI"},
        format="json",
    ).json()
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["task.created", "reminder.due"]
    assert created["enabled"] is True

    listed = api.get("/api/webhooks/").json()["results"]
    shown = api.get(f"/api/webhooks/{created['id']}/").json()
    assert "secret" not in listed[0] and "secret" not in shown
    assert created["secret"] not in api.get("/api/webhooks/").content.decode()


def test_another_users_webhook_is_a_404(api, bob_api, bob):
    theirs = make_endpoint(bob)
    assert api.get(f"/api/webhooks/{theirs.pk}/").status_code == 404
    assert api.delete(f"/api/webhooks/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/webhooks/{theirs.pk}/test/").status_code == 404
    assert api.get(f"/api/webhooks/{theirs.pk}/deliveries/").status_code == 404
    assert api.get("/api/webhooks/").json()["count"] == 0
    assert bob_api.get("/api/webhooks/").json()["count"] == 1


def test_a_delivery_of_another_endpoint_cannot_be_redelivered_through_mine(api, alice, bob):
    mine = make_endpoint(alice)
    theirs = make_endpoint(bob)
    delivery = WebhookDelivery.objects.create(
        endpoint=theirs, event_id="e1", event_type="task.created", body="{}", state="failed"
    )
    response = api.post(f"/api/webhooks/{mine.pk}/deliveries/{delivery.pk}/redeliver/")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": URL, "event_types": ["task.exploded"]}, "event_types"),
        ({"url": URL, "event_types": []}, "event_types"),
        ({"url": "not a url", "event_types": ["task.created"]}, "url"),
        ({"url": URL, "event_types": ["task.created"], "secret": "mine"}, "secret"),
        ({"event_types": ["task.created"]}, "url"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, body, field):
    response = api.post("/api/webhooks/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_the_number_of_webhooks_is_limited(api, alice, settings):
    settings.WEBHOOK_MAX_ENDPOINTS = 2
    make_endpoint(alice)
    make_endpoint(alice)
    response = api.post("/api/webhooks/", {"url": URL, "event_types": ["task.created"]})
    assert response.status_code == 400
    assert "delete one first" in response.json()["url"][0]


def test_changing_and_deleting_a_webhook(api, alice):
    endpoint = make_endpoint(alice)
    response = api.patch(
        f"/api/webhooks/{endpoint.pk}/",
        {"event_types": ["task.deleted"], "description": "cleanup"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["event_types"] == ["task.deleted"]
    refused = api.patch(f"/api/webhooks/{endpoint.pk}/", {"url": "http://10.0.0.1/"}, format="json")
    assert refused.status_code == 400
    assert "private" in refused.json()["url"][0]
    assert api.delete(f"/api/webhooks/{endpoint.pk}/").status_code == 204
    assert api.get(f"/api/webhooks/{endpoint.pk}/").status_code == 404


def test_a_disabled_webhook_is_not_sent_a_test_event(api, alice):
    endpoint = make_endpoint(alice)
    api.patch(f"/api/webhooks/{endpoint.pk}/", {"enabled": False}, format="json")
    response = api.post(f"/api/webhooks/{endpoint.pk}/test/")
    assert response.status_code == 400
    assert "enable it first" in response.json()["enabled"][0]


def test_the_openapi_schema_documents_the_webhook_routes(api):
    schema = api.get("/api/schema/?format=json").json()
    assert "/api/webhooks/" in schema["paths"]
    assert "/api/webhooks/{id}/deliveries/" in schema["paths"]
    assert "/api/webhooks/{id}/deliveries/{delivery_id}/redeliver/" in schema["paths"]
    assert "/api/webhooks/{id}/test/" in schema["paths"]


#: GET /api/webhooks/: the token, COUNT(*), the page.
LIST_QUERIES = 3
#: GET /api/webhooks/<id>/deliveries/: the token, the endpoint, COUNT(*), the page, attempts.
LOG_QUERIES = 5


@pytest.mark.parametrize("n", [1, 8])
def test_the_webhook_list_runs_the_same_queries_for_1_and_8(
    api, alice, django_assert_num_queries, n
):
    for _ in range(n):
        make_endpoint(alice)
    with django_assert_num_queries(LIST_QUERIES):
        response = api.get("/api/webhooks/")
    assert response.json()["count"] == n


@pytest.mark.parametrize("n", [1, 30])
def test_the_delivery_log_runs_the_same_queries_for_1_and_30(
    api, alice, django_assert_num_queries, n
):
    endpoint = make_endpoint(alice)
    for i in range(n):
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=f"e{i}", event_type="task.created", body="{}"
        )
        for code in (500, 204):
            WebhookAttempt.objects.create(
                delivery=delivery, started_at=timezone.now(), status_code=code
            )
    with django_assert_num_queries(LOG_QUERIES):
        response = api.get(f"/api/webhooks/{endpoint.pk}/deliveries/")
    assert response.json()["count"] == n
    assert [len(d["attempts"]) for d in response.json()["results"]] == [2] * n
