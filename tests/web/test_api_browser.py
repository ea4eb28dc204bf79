"""The API in a browser: docs served from this site, the browsable API's forms, its login."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from django.test import Client

from tasks.models import Task

# --- reading pages ------------------------------------------------------------------------


def asset_urls(html: str) -> list[str]:
    """Every URL the page loads or links in its <head>/<body> markup (src and href)."""
    return re.findall(r'(?:src|href)="([^"]+)"', html)


class _PostForm(HTMLParser):
    """The controls of the browsable API's "HTML form" (its first multipart form with a
    method; the logout form comes earlier), as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._in_form = self._done = False
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self._done:
            return
        if tag == "form" and a.get("enctype") == "multipart/form-data" and "method" in a:
            self._in_form = True
        if not self._in_form or (not a.get("name") and tag != "option"):
            return
        name = a.get("name")
        if tag == "input" and a.get("type") not in ("checkbox", "radio", "submit", "button"):
            self.data[name] = a.get("value") or ""
        elif tag == "input" and a.get("type") == "checkbox" and "checked" in a:
            self.data[name] = a.get("value") or "on"
        elif tag == "textarea":
            self._textarea = name
            self.data[name] = ""
        elif tag == "select":
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            value = a.get("value") or ""
            if self._first_option is None:
                self._first_option = value
                self.data[self._select] = value
            if "selected" in a:
                self.data[self._select] = value

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def browser_form(html: str) -> dict[str, str]:
    parser = _PostForm()
    parser.feed(html)
    return parser.data


# --- the docs work offline ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_load_only_assets_served_by_this_site(client, db, path):
    response = client.get(path)

    assert response.status_code == 200
    html = response.content.decode()
    assets = asset_urls(html)
    assert assets, "the page loads no assets?"
    assert "//" not in " ".join(assets), assets  # no other host, not even protocol-relative
    for url in assets:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        assert client.get(url).status_code == 200, url


def test_redoc_reads_the_schema_of_this_site(client, db):
    html = client.get("/api/redoc/").content.decode()

    assert "/api/schema/" in html
    assert client.get("/api/schema/").status_code == 200


# --- the browsable API's forms --------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_the_browsable_apis_html_form_creates_a_task(alice, encoding):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page = browser.get("/api/tasks/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    form = browser_form(page.content.decode())
    assert form["csrfmiddlewaretoken"]
    form["title"] = "Posted from the browser"

    if encoding == "multipart":
        response = browser.post("/api/tasks/", form, HTTP_ACCEPT="text/html")
    else:
        response = browser.post(
            "/api/tasks/",
            urlencode(form),
            content_type="application/x-www-form-urlencoded",
            HTTP_ACCEPT="text/html",
        )

    assert response.status_code == 201, response.content.decode()[:2000]
    task = Task.objects.get(user=alice)
    assert task.title == "Posted from the browser"


def test_a_browser_form_without_the_csrf_token_is_refused(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)

    response = browser.post("/api/tasks/", {"title": "Forged"}, HTTP_ACCEPT="application/json")

    assert response.status_code == 403
    assert not Task.objects.exists()


def test_a_form_with_an_unknown_field_is_still_refused(client, alice):
    client.force_login(alice)

    response = client.post(
        "/api/tasks/", {"title": "Typo", "prority": "high"}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {"prority": ["Unknown field."]}


def test_json_with_a_csrf_field_is_still_an_unknown_field(api):
    response = api.post(
        "/api/tasks/", {"title": "JSON", "csrfmiddlewaretoken": "abc"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"csrfmiddlewaretoken": ["Unknown field."]}


def test_the_recurrence_preview_accepts_a_browser_form_and_refuses_the_token_in_json(
    client, alice, api
):
    client.force_login(alice)
    form = {"rule": "FREQ=DAILY", "count": "2", "csrfmiddlewaretoken": "ignored-here"}

    from_form = client.post("/api/recurrence/preview/", form, HTTP_ACCEPT="application/json")
    as_json = api.post("/api/recurrence/preview/", form, format="json")

    assert from_form.status_code == 200
    assert len(from_form.json()["occurrences"]) == 2
    assert as_json.status_code == 400
    assert as_json.json() == {"csrfmiddlewaretoken": ["Unknown field."]}


# --- the browsable API's login --------------------------------------------------------------


def test_the_browsable_apis_login_links_to_sign_up(client, db):
    html = client.get("/api-auth/login/").content.decode()

    assert 'href="/accounts/signup/"' in html
    assert "Sign up" in html


def test_the_browsable_apis_login_without_next_lands_on_home(client, alice):
    response = client.post(
        "/api-auth/login/", {"username": "alice", "password": "correct horse battery staple"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/"
