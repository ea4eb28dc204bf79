"""Accounts: register, get a token, authenticate by token or session; the profile at /api/me/."""

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.test import APIClient

from tasks.models import ApiToken, Profile
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


def test_register_creates_a_user_with_a_profile_and_answers_201(anon_api, db, settings):
    response = anon_api.post(
        "/api/auth/register/",
        {"username": "carol", "email": "carol@example.com", "password": PASSWORD},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["username"] == "carol"
    assert body["email"] == "carol@example.com"
    assert body["timezone"] == settings.TIME_ZONE
    assert "password" not in body
    user = get_user_model().objects.get(username="carol")
    assert user.check_password(PASSWORD)
    assert Profile.objects.filter(user=user).exists()


def test_register_with_a_taken_username_is_400_naming_username(anon_api, alice):
    response = anon_api.post(
        "/api/auth/register/",
        {"username": "Alice", "email": "other@example.com", "password": PASSWORD},
    )

    assert response.status_code == 400
    assert "username" in response.json()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "carol", "email": "carol@example.com", "password": "123"}, "password"),
        ({"username": "carol", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"username": "", "email": "carol@example.com", "password": PASSWORD}, "username"),
        ({"username": "c a r o l", "email": "carol@example.com", "password": PASSWORD}, "username"),
        ({"email": "carol@example.com", "password": PASSWORD}, "username"),
    ],
    ids=["weak-password", "bad-email", "empty-username", "spaces-in-username", "no-username"],
)
def test_register_with_bad_input_is_400_naming_the_field(anon_api, db, payload, field):
    response = anon_api.post("/api/auth/register/", payload)

    assert response.status_code == 400
    assert field in str(response.json())
    assert not get_user_model().objects.filter(username="carol").exists()


def test_token_exchanges_username_and_password_for_a_new_named_token(anon_api, alice):
    response = anon_api.post("/api/auth/token/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 200
    body = response.json()
    token = ApiToken.objects.get(user=alice)
    assert body["token"].startswith(token.prefix)
    assert token.digest == ApiToken.digest_of(body["token"])
    assert body["name"] == f"API token ({timezone.localdate().isoformat()})"


def test_token_with_a_wrong_password_is_400(anon_api, alice):
    response = anon_api.post("/api/auth/token/", {"username": "alice", "password": "wrong"})

    assert response.status_code == 400
    assert "token" not in response.json()


def test_register_then_token_then_use_it(anon_api, db):
    anon_api.post(
        "/api/auth/register/",
        {"username": "dave", "email": "dave@example.com", "password": PASSWORD},
    )
    token = anon_api.post("/api/auth/token/", {"username": "dave", "password": PASSWORD}).json()[
        "token"
    ]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    created = client.post("/api/tasks/", {"title": "First"})

    assert created.status_code == 201
    assert client.get("/api/tasks/").json()["count"] == 1


def test_token_auth_works(api):
    assert api.get("/api/tasks/").status_code == 200


def test_a_bad_token_is_401(anon_api, alice):
    anon_api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert anon_api.get("/api/tasks/").status_code == 401


def test_session_auth_works_for_reads_and_writes(alice):
    client = APIClient()
    assert client.login(request=HttpRequest(), username="alice", password=PASSWORD)

    assert client.get("/api/tasks/").status_code == 200
    assert client.post("/api/tasks/", {"title": "From the browser"}).status_code == 201
    assert client.get("/api/me/").json()["username"] == "alice"


def test_session_auth_writes_need_the_csrf_token(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.login(request=HttpRequest(), username="alice", password=PASSWORD)

    response = client.post("/api/tasks/", {"title": "Forged"})

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/tasks/"),
        ("post", "/api/tasks/"),
        ("get", "/api/tasks/1/"),
        ("put", "/api/tasks/1/"),
        ("patch", "/api/tasks/1/"),
        ("delete", "/api/tasks/1/"),
        ("post", "/api/tasks/1/complete/"),
        ("post", "/api/tasks/1/reopen/"),
        ("get", "/api/categories/"),
        ("post", "/api/categories/"),
        ("get", "/api/categories/1/"),
        ("delete", "/api/categories/1/"),
        ("get", "/api/tags/"),
        ("post", "/api/tags/"),
        ("get", "/api/tags/1/"),
        ("delete", "/api/tags/1/"),
        ("get", "/api/me/"),
        ("patch", "/api/me/"),
    ],
)
def test_unauthenticated_requests_are_401(anon_api, db, method, path):
    response = getattr(anon_api, method)(path, {} if method in ("post", "put", "patch") else None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Token")


# --- /api/me/ ----------------------------------------------------------------------------


def test_me_shows_the_profile(api, alice, settings):
    body = api.get("/api/me/").json()

    assert body == {
        "id": alice.pk,
        "username": "alice",
        "email": "alice@example.com",
        "timezone": settings.TIME_ZONE,
        "reminders_enabled": True,
    }


def test_patching_me_changes_the_timezone(api, alice):
    response = api.patch("/api/me/", {"timezone": "Europe/Paris"})

    assert response.status_code == 200
    assert response.json()["timezone"] == "Europe/Paris"
    assert Profile.objects.get(user=alice).timezone == "Europe/Paris"


def test_patching_me_changes_email_and_reminders(api, alice):
    response = api.patch("/api/me/", {"email": "a@example.org", "reminders_enabled": False})

    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.email == "a@example.org"
    assert Profile.objects.get(user=alice).reminders_enabled is False


@pytest.mark.parametrize("payload", [{"username": "mallory"}, {"id": 999}])
def test_patching_me_to_change_a_read_only_field_is_400_naming_it(api, alice, payload):
    response = api.patch("/api/me/", {**payload, "email": "new@example.org"})

    assert response.status_code == 400
    field = next(iter(payload))
    assert response.json() == {field: ["Read-only: it cannot be changed."]}
    alice.refresh_from_db()
    assert (alice.username, alice.email) == ("alice", "alice@example.com")


def test_patching_me_with_what_get_showed_and_a_new_email_changes_the_email(api, alice):
    shown = api.get("/api/me/").json()

    response = api.patch("/api/me/", {**shown, "email": "new@example.org"})

    assert response.status_code == 200, response.json()
    assert response.json() == {**shown, "email": "new@example.org"}


def test_patching_me_from_a_form_with_the_same_username_is_accepted(api, alice):
    response = api.patch(
        "/api/me/", {"username": "alice", "timezone": "Asia/Tokyo"}, format="multipart"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"email": "not-an-email"}, "email"),
        ({"timezon": "Europe/Paris"}, "timezon"),
    ],
)
def test_patching_me_with_bad_input_is_400_naming_the_field(api, payload, field):
    response = api.patch("/api/me/", payload)

    assert response.status_code == 400
    assert field in response.json()


def test_me_cannot_be_replaced_with_put(api):
    assert api.put("/api/me/", {"timezone": "UTC"}).status_code == 405


def test_me_is_per_user(api, bob_api):
    api.patch("/api/me/", {"timezone": "Europe/Paris"})

    assert bob_api.get("/api/me/").json()["username"] == "bob"
    assert bob_api.get("/api/me/").json()["timezone"] != "Europe/Paris"


def test_me_creates_a_missing_profile(db):
    user = UserFactory(username="legacy")
    Profile.objects.filter(user=user).delete()
    client = APIClient()
    client.force_authenticate(user)

    assert client.get("/api/me/").status_code == 200
    assert Profile.objects.filter(user=user).exists()
