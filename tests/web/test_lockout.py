"""Lockout after repeated failed logins (django-axes), on every login path: after
``AXES_FAILURE_LIMIT`` wrong passwords for one username from one address, even the right
password is refused there; other users and other addresses are unaffected."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client

from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
LIMIT = 3
ATTACKER = "203.0.113.66"


@pytest.fixture(autouse=True)
def _low_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


@pytest.fixture(autouse=True)
def _no_throttle(monkeypatch):
    """The token endpoint's own rate limit stays out of these tests (test_throttling.py)."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "auth", "1000/min")


def web_login(username: str, password: str, address: str = ATTACKER):
    return Client().post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def api_auth_login(username: str, password: str, address: str = ATTACKER):
    return Client().post(
        "/api-auth/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def admin_login(username: str, password: str, address: str = ATTACKER):
    return Client().post(
        "/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def token_login(username: str, password: str, address: str = ATTACKER):
    return Client().post(
        "/api/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def logged_in(response) -> bool:
    """A login page redirects on success; the token endpoint answers 200 with the token."""
    if response.status_code == 302:
        return True
    is_json = response["Content-Type"] == "application/json"
    return response.status_code == 200 and is_json and "token" in response.json()


PATHS: dict[str, Callable] = {
    "web": web_login,
    "api-auth": api_auth_login,
    "admin": admin_login,
    "token": token_login,
}


@pytest.fixture
def staff(db):
    return UserFactory(username="carol", is_staff=True, is_superuser=True)


def fail(login: Callable, username: str, times: int = LIMIT) -> None:
    for _ in range(times):
        assert not logged_in(login(username, "wrong password"))


@pytest.mark.parametrize("path", PATHS)
def test_the_right_password_logs_in_before_the_limit(staff, path):
    fail(PATHS[path], "carol", times=LIMIT - 1)

    assert logged_in(PATHS[path]("carol", PASSWORD))


@pytest.mark.parametrize("path", PATHS)
def test_after_the_limit_even_the_right_password_is_refused(staff, path):
    fail(PATHS[path], "carol")

    response = PATHS[path]("carol", PASSWORD)
    assert response.status_code == 429
    assert not logged_in(response)


@pytest.mark.parametrize("path", PATHS)
def test_a_lockout_spans_every_login_path(staff, path):
    fail(PATHS[path], "carol")

    assert all(login("carol", PASSWORD).status_code == 429 for login in PATHS.values())


@pytest.mark.parametrize("path", PATHS)
def test_another_user_and_another_address_are_unaffected(staff, path):
    UserFactory(username="dave", is_staff=True)
    fail(PATHS[path], "carol")

    assert logged_in(PATHS[path]("dave", PASSWORD))
    assert logged_in(PATHS[path]("carol", PASSWORD, address="198.51.100.7"))


def test_the_web_login_shows_a_lockout_page(staff):
    fail(web_login, "carol")

    response = web_login("carol", PASSWORD)
    assert response["Content-Type"].startswith("text/html")
    assert b"Too many failed logins" in response.content
    assert b"carol" in response.content


def test_the_token_endpoint_answers_json_with_retry_after(staff):
    fail(token_login, "carol")

    response = token_login("carol", PASSWORD)
    assert response["Content-Type"] == "application/json"
    assert "Too many failed logins" in response.json()["detail"]
    cooloff = django_settings.AXES_COOLOFF_TIME.total_seconds()
    assert int(response["Retry-After"]) == cooloff


def test_wrong_passwords_are_400s_until_the_one_that_reaches_the_limit(staff):
    answers = [token_login("carol", "wrong").status_code for _ in range(LIMIT)]

    assert answers == [400] * (LIMIT - 1) + [429]


def test_axes_reset_lifts_the_lockout(staff):
    fail(web_login, "carol")
    assert web_login("carol", PASSWORD).status_code == 429

    call_command("axes_reset", verbosity=0)

    assert web_login("carol", PASSWORD).status_code == 302


def test_the_lockout_defaults():
    assert django_settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert django_settings.AXES_COOLOFF_TIME.total_seconds() == 3600
