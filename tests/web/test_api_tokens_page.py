"""The API access page: the user's tokens, a form to create one (its secret shown once, with
a copy button that needs no JavaScript to be useful), and revoking with a confirmation page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tasks import services
from tasks.models import ApiToken
from tests.web.html import cells, field_error, flash, parse, unlabelled_controls

API_ACCESS = reverse("api-access")
CREATE = reverse("api-token-create")


def token_works(secret: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client.get("/api/tasks/").status_code


def revoke_url(token: ApiToken) -> str:
    return reverse("api-token-revoke", args=[token.pk])


@pytest.fixture
def signed_in(client, alice) -> Client:
    client.force_login(alice)
    return client


def test_without_tokens_the_page_says_so_and_offers_the_form(signed_in):
    response = signed_in.get(API_ACCESS)

    page = parse(response)
    assert "You have no API tokens." in page.text
    assert page.find("form", action=CREATE)
    assert [o.attrs["value"] for o in page.get("id_expires_in_days").find("option")] == [
        "7",
        "30",
        "90",
        "365",
        "never",
    ]
    assert unlabelled_controls(response) == []


def test_the_page_lists_each_token_without_its_secret(signed_in, alice, bob):
    laptop, secret = services.api_token_create(user=alice, name="Laptop", expires_in_days=30)
    forever, _ = services.api_token_create(user=alice, name="Forever")
    ApiToken.objects.filter(pk=forever.pk).update(
        created_at=dt.datetime(2026, 1, 2, 8, tzinfo=dt.UTC),
        last_used_at=dt.datetime(2026, 2, 3, 9, 15, tzinfo=dt.UTC),
    )
    services.api_token_create(user=bob, name="Bob's token")

    response = signed_in.get(API_ACCESS)

    expires = timezone.localtime(laptop.expires_at).strftime("%-d %b %Y")
    assert cells(response, f"token-{laptop.pk}") == [
        "Laptop",
        f"{secret[:12]}…",
        timezone.localtime(laptop.created_at).strftime("%-d %b %Y"),
        expires,
        "Never",
        "Revoke…",
    ]
    assert cells(response, f"token-{forever.pk}")[2:5] == [
        "2 Jan 2026",
        "Never",
        "3 Feb 2026, 09:15",
    ]
    body = response.content.decode()
    assert secret not in body and laptop.digest not in body
    assert "Bob's token" not in body
    assert parse(response).find("a", href=revoke_url(laptop), **{"aria-label": "Revoke Laptop"})


def test_an_expired_token_is_marked_expired(signed_in, alice):
    token, _ = services.api_token_create(user=alice, name="Old", expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(
        expires_at=dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    )

    assert cells(signed_in.get(API_ACCESS), f"token-{token.pk}")[3] == "Expired 1 Mar 2026"


def test_creating_a_token_shows_its_secret_once_with_a_copy_button_and_a_curl_example(
    signed_in, alice
):
    response = signed_in.post(CREATE, {"name": "Backup script", "expires_in_days": "30"})

    assert response.status_code == 201
    assert response.headers["Cache-Control"].startswith("max-age=0")  # never cached
    token = ApiToken.objects.get(user=alice)
    page = parse(response)
    secret = page.get("new-token").attrs["value"]
    assert token.digest == ApiToken.digest_of(secret)
    assert "readonly" in page.get("new-token").attrs
    copy = page.find("button", **{"data-copy": "new-token"})[0]
    assert "hidden" in copy.attrs  # shown by app.js where the clipboard can be written
    assert "it is not shown again" in page.text
    assert f'curl -H "Authorization: Token {secret}"' in response.content.decode()
    assert "http://testserver/api/tasks/" in response.content.decode()
    assert cells(response, f"token-{token.pk}")[0] == "Backup script"
    assert token.expires_at - timezone.now() > dt.timedelta(days=29)
    assert token_works(secret) == 200

    again = signed_in.get(API_ACCESS)
    assert secret not in again.content.decode()
    assert parse(again).by_id("new-token") is None


def test_a_token_can_be_created_that_never_expires(signed_in, alice):
    signed_in.post(CREATE, {"name": "Forever", "expires_in_days": "never"})

    token = ApiToken.objects.get(user=alice)
    assert token.expires_at is None
    assert cells(signed_in.get(API_ACCESS), f"token-{token.pk}")[3] == "Never"


@pytest.mark.parametrize(
    ("data", "control", "error"),
    [
        ({"name": "", "expires_in_days": "30"}, "id_name", "This field is required."),
        ({"name": "   ", "expires_in_days": "30"}, "id_name", "This field is required."),
        (
            {"name": "A", "expires_in_days": "1000"},
            "id_expires_in_days",
            "Select a valid choice. 1000 is not one of the available choices.",
        ),
    ],
)
def test_bad_input_is_shown_beside_the_field_and_creates_nothing(
    signed_in, alice, data, control, error
):
    response = signed_in.post(CREATE, data)

    assert response.status_code == 400
    assert field_error(response, control) == error
    assert not ApiToken.objects.exists()


def test_the_token_limit_is_shown_beside_the_name(signed_in, alice):
    for i in range(services.MAX_API_TOKENS_PER_USER):
        services.api_token_create(user=alice, name=f"Token {i}")

    response = signed_in.post(CREATE, {"name": "One too many", "expires_in_days": "7"})

    assert response.status_code == 400
    assert field_error(response, "id_name") == (
        "You already have 50 tokens, the most allowed: revoke one you no longer use."
    )


def test_revoking_asks_first_then_the_token_stops_working(signed_in, alice):
    token, secret = services.api_token_create(user=alice, name="Old laptop")
    _, kept_secret = services.api_token_create(user=alice, name="Desktop")

    confirm = signed_in.get(revoke_url(token))
    assert confirm.status_code == 200
    assert parse(confirm).find("h1")[0].text == "Revoke the token “Old laptop”?"
    assert parse(confirm).find("form", action=revoke_url(token), method="post")
    assert token_works(secret) == 200  # asking changes nothing

    response = signed_in.post(revoke_url(token), follow=True)

    assert response.redirect_chain == [(API_ACCESS, 302)]
    assert flash(response) == ["The token “Old laptop” was revoked."]
    assert parse(response).by_id(f"token-{token.pk}") is None
    assert token_works(secret) == 401
    assert token_works(kept_secret) == 200


def test_another_users_token_cannot_be_seen_or_revoked(signed_in, bob):
    token, secret = services.api_token_create(user=bob, name="Bob's")

    assert signed_in.get(revoke_url(token)).status_code == 404
    assert signed_in.post(revoke_url(token)).status_code == 404
    assert token_works(secret) == 200


def test_anonymous_visitors_are_sent_to_log_in(client, alice):
    token, _ = services.api_token_create(user=alice, name="Laptop")

    for url in (API_ACCESS, revoke_url(token)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={url}"
    assert client.post(revoke_url(token)).status_code == 302
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_revoking_needs_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    token, _ = services.api_token_create(user=alice, name="Laptop")

    assert client.post(revoke_url(token)).status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_the_page_runs_as_many_queries_for_20_tokens_as_for_1(signed_in, alice):
    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = signed_in.get(API_ACCESS)
        assert response.status_code == 200
        return len(queries)

    services.api_token_create(user=alice, name="First")
    one = page_queries()
    for i in range(19):
        services.api_token_create(user=alice, name=f"Token {i}")

    assert page_queries() == one
