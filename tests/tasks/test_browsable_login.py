"""Signing in on the browsable API's own page (/api-auth/login/) lands somewhere real.

The page is reached without ``next`` when typed or bookmarked; its form then posts an
empty ``next``, and Django falls back to LOGIN_REDIRECT_URL: the home page, never a 404.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.web.html import parse

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def submit_login_form(client: Client, url: str):
    """Fill in the page's form as a browser would (its hidden fields included) and send it."""
    page = parse(client.get(url))
    form = page.find("form")[0]
    data = {
        field.attrs["name"]: field.attrs.get("value") or ""
        for field in form.find("input")
        if field.attrs.get("name")
    }
    data.update(username="alice", password=PASSWORD)
    return client.post(form.attrs.get("action") or url, data, follow=True)


def test_signing_in_without_next_lands_on_the_home_page(alice):
    client = Client(enforce_csrf_checks=True)

    response = submit_login_form(client, "/api-auth/login/")

    assert response.redirect_chain == [("/", 302)]
    assert response.status_code == 200
    assert response.wsgi_request.user == alice


def test_signing_in_with_next_goes_back_to_the_api_page(alice):
    client = Client(enforce_csrf_checks=True)

    response = submit_login_form(client, "/api-auth/login/?next=/api/tasks/")

    assert response.redirect_chain == [("/api/tasks/", 302)]
    assert response.status_code == 200


def test_signing_in_with_next_on_another_site_lands_on_the_home_page(alice):
    client = Client(enforce_csrf_checks=True)

    response = submit_login_form(client, "/api-auth/login/?next=https://evil.example/")

    assert response.redirect_chain == [("/", 302)]


def test_a_login_posted_without_any_next_field_lands_on_the_home_page(alice):
    """A script or an old bookmark of the form posts only the credentials: still never
    Django's default /accounts/profile/ (a 404 here)."""
    client = Client()

    response = client.post(
        "/api-auth/login/", {"username": "alice", "password": PASSWORD}, follow=True
    )

    assert response.redirect_chain == [("/", 302)]
    assert response.status_code == 200
    assert response.wsgi_request.user == alice
