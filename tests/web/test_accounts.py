"""Account pages: sign up, log in and out, passwords and settings (API tokens have their own)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from tasks.models import ApiToken, Profile

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new tideline secret"


# --- reading pages ------------------------------------------------------------------------


class _Controls(HTMLParser):
    """The attributes of every form control, by ``name``."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("input", "select", "textarea") and attributes.get("name"):
            self.controls.setdefault(attributes["name"], attributes)


def control(response, name: str) -> dict[str, str | None]:
    parser = _Controls()
    parser.feed(response.content.decode())
    return parser.controls[name]


def field_errors(response, name: str) -> list[str]:
    """The errors shown beside a field, as the control's aria-describedby points to them."""
    attrs = control(response, name)
    error_id = f"{attrs['id']}_error"
    assert error_id in (attrs.get("aria-describedby") or "").split()
    assert attrs.get("aria-invalid") == "true"
    match = re.search(
        rf'<ul class="errorlist" id="{error_id}">(.*?)</ul>', response.content.decode()
    )
    assert match, f"no error list for {name}"
    return [
        text.replace("&#x27;", "'").replace("&quot;", '"')
        for text in re.findall(r"<li>(.*?)</li>", match.group(1))
    ]


def api_errors(payload: dict, path: str = "/api/auth/register/", client=None) -> dict:
    client = client or APIClient()
    method = client.patch if path == "/api/me/" else client.post
    response = method(path, payload, format="json")
    assert response.status_code == 400
    return response.json()


def signup_data(**overrides) -> dict:
    return {
        "username": "carol",
        "email": "carol@example.com",
        "password1": PASSWORD,
        "password2": PASSWORD,
        **overrides,
    }


# --- sign up --------------------------------------------------------------------------------


def test_signing_up_creates_the_user_with_a_profile_logs_in_and_welcomes(client, db):
    response = client.post(reverse("signup"), signup_data())

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    user = get_user_model().objects.get(username="carol")
    assert user.email == "carol@example.com"
    assert user.check_password(PASSWORD)
    assert Profile.objects.filter(user=user).exists()
    page = client.get(reverse("settings"))
    assert page.status_code == 200
    assert "Welcome to Tideline, carol!" in page.content.decode()


def test_the_signup_page_labels_every_field(client, db):
    body = client.get(reverse("signup")).content.decode()

    for name in ("username", "email", "password1", "password2"):
        assert f'<label for="id_{name}">' in body


def test_a_taken_username_is_refused_beside_the_field_in_the_apis_words(client, alice):
    response = client.post(reverse("signup"), signup_data(username="Alice"))

    assert response.status_code == 400
    api = api_errors({"username": "Alice", "email": "c@example.com", "password": PASSWORD})
    assert field_errors(response, "username") == api["username"] == ["This username is taken."]
    assert get_user_model().objects.count() == 1


def test_mismatched_passwords_are_refused_beside_the_confirmation(client, db):
    response = client.post(reverse("signup"), signup_data(password2="something else entirely"))

    assert response.status_code == 400
    assert field_errors(response, "password2") == ["The two password fields didn\u2019t match."]
    assert not get_user_model().objects.filter(username="carol").exists()


def test_a_weak_password_is_refused_beside_the_password_in_the_apis_words(client, db):
    response = client.post(reverse("signup"), signup_data(password1="123", password2="123"))

    assert response.status_code == 400
    api = api_errors({"username": "carol", "email": "carol@example.com", "password": "123"})
    assert field_errors(response, "password1") == api["password"]
    assert "This password is too short. It must contain at least 8 characters." in api["password"]
    assert not get_user_model().objects.filter(username="carol").exists()


# --- log in and out -------------------------------------------------------------------------


def test_the_login_page_links_to_sign_up_and_password_reset(client, db):
    body = client.get(reverse("login")).content.decode()

    assert f'href="{reverse("signup")}"' in body
    assert f'href="{reverse("password_reset")}"' in body
    assert "Forgot your password?" in body
    assert '<label for="id_username">' in body and '<label for="id_password">' in body


@pytest.mark.parametrize("debug", [True, False])
def test_the_login_page_shows_the_demo_login_only_under_debug(client, db, settings, debug):
    settings.DEBUG = debug

    body = client.get(reverse("login")).content.decode()

    assert ("tideline-demo" in body) is debug


def test_logging_in_goes_to_the_page_asked_for(client, alice):
    response = client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD, "next": "/settings/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/settings/"
    page = client.get("/settings/")
    assert page.status_code == 200
    assert "Welcome back, alice." in page.content.decode()


def test_a_wrong_password_is_refused_with_a_message(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "not it"})

    assert response.status_code == 400
    assert "Please enter a correct username and password." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logging_out_by_get_is_refused(client, alice):
    client.force_login(alice)

    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("settings")).status_code == 200


def test_logging_out_ends_the_session_and_says_so(client, alice):
    client.force_login(alice)

    response = client.post(reverse("logout"), follow=True)

    assert response.redirect_chain[0] == (reverse("login"), 302)
    assert "You are logged out." in response.content.decode()
    assert client.get(reverse("settings")).status_code == 302


# --- passwords ------------------------------------------------------------------------------


def test_changing_the_password(client, alice):
    client.force_login(alice)

    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert client.get(reverse("settings")).status_code == 200  # still logged in


def test_a_wrong_old_password_is_refused_beside_the_field(client, alice):
    client.force_login(alice)

    response = client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    assert field_errors(response, "old_password") == [
        "Your old password was entered incorrectly. Please enter it again."
    ]
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_password_reset_from_the_email_to_logging_in(client, alice):
    response = client.post(
        reverse("password_reset"), {"email": "alice@example.com"}, HTTP_HOST="localhost:8000"
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["alice@example.com"]
    assert email.subject == "Reset your Tideline password"
    link = re.search(r"http://localhost:8000(/accounts/password/reset/\S+/\S+/)", email.body)
    assert link, email.body

    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    assert "Choose a new password" in form_page.content.decode()
    set_password_url = form_page.redirect_chain[-1][0]

    done = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("password_reset_complete")

    logged_in = client.post(reverse("login"), {"username": "alice", "password": NEW_PASSWORD})
    assert logged_in.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, alice):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})

    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_a_used_reset_link_no_longer_works(client, alice):
    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    token = default_token_generator.make_token(alice)
    alice.set_password(NEW_PASSWORD)
    alice.save()

    response = client.get(reverse("password_reset_confirm", args=[uid, token]), follow=True)

    assert "This link no longer works" in response.content.decode()


# --- settings -------------------------------------------------------------------------------


def test_the_settings_page_shows_the_current_values_and_links(client, alice):
    client.force_login(alice)
    Profile.objects.filter(user=alice).update(timezone="Europe/Paris")

    response = client.get(reverse("settings"))

    body = response.content.decode()
    assert control(response, "email")["value"] == "alice@example.com"
    assert control(response, "timezone")["value"] == "Europe/Paris"
    assert control(response, "timezone")["list"] == "timezone-options"
    assert '<datalist id="timezone-options">' in body
    assert '<option value="America/New_York">' in body
    assert f'href="{reverse("password_change")}"' in body
    assert f'href="{reverse("api-access")}"' in body


def test_saving_settings(client, alice):
    client.force_login(alice)

    response = client.post(
        reverse("settings"), {"email": "alice@new.example", "timezone": "Asia/Tokyo"}, follow=True
    )

    assert "Settings saved." in response.content.decode()
    profile = Profile.objects.get(user=alice)
    assert profile.timezone == "Asia/Tokyo"
    assert profile.reminders_enabled is False  # the box was left unticked
    alice.refresh_from_db()
    assert alice.email == "alice@new.example"


def test_an_unknown_time_zone_is_refused_beside_the_field_in_the_apis_words(client, api, alice):
    client.force_login(alice)

    response = client.post(
        reverse("settings"),
        {"email": "alice@example.com", "timezone": "Mars/Olympus", "reminders_enabled": "on"},
    )

    assert response.status_code == 400
    api_message = api_errors({"timezone": "Mars/Olympus"}, path="/api/me/", client=api)
    assert field_errors(response, "timezone") == api_message["timezone"]
    assert api_message["timezone"] == ["'Mars/Olympus' is not a known IANA time zone."]
    assert Profile.objects.get(user=alice).timezone == "UTC"


def test_a_bad_email_is_refused_with_a_400_and_nothing_is_saved(client, alice):
    client.force_login(alice)

    response = client.post(reverse("settings"), {"email": "not-an-address", "timezone": "UTC"})

    assert response.status_code == 400
    assert field_errors(response, "email") == ["Enter a valid email address."]
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"


# --- login and CSRF on every page -----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "settings",
        "api-access",
        "password_change",
        "password_change_done",
    ],
)
def test_account_pages_send_anonymous_visitors_to_log_in(client, db, name):
    url = reverse(name)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_anonymous_visitors_cannot_create_a_token(client, alice):
    response = client.post(reverse("api-token-create"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not ApiToken.objects.exists()


def _reset_confirm_url(user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(user)])


@pytest.mark.parametrize(
    ("url", "signed_in"),
    [
        (reverse("signup"), False),
        (reverse("login"), False),
        (reverse("password_reset"), False),
        (None, False),  # the set-password form of a reset link
        (reverse("logout"), True),
        (reverse("password_change"), True),
        (reverse("settings"), True),
        (reverse("api-token-create"), True),
    ],
)
def test_every_post_needs_the_csrf_token(alice, url, signed_in):
    client = Client(enforce_csrf_checks=True)
    if signed_in:
        client.force_login(alice)

    response = client.post(url or _reset_confirm_url(alice), {"email": "x@example.com"})

    assert response.status_code == 403
    assert not ApiToken.objects.exists()
