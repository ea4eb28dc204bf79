"""The e2e world works: the production server (gunicorn, DEBUG off) serves pages, static
files and the API docs to a real browser, and the e-mails it sends can be read."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.e2e.support import ROOT, AppServer, check_accessibility

pytestmark = [pytest.mark.e2e, pytest.mark.service("browser")]


def test_the_login_page_renders_and_passes_the_accessibility_check(page: Page):
    response = page.goto("/accounts/login/")

    assert response is not None and response.status == 200
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    check_accessibility(page)


def test_the_login_page_fits_a_phone_screen_without_sideways_scrolling(phone_page: Page):
    phone_page.goto("/accounts/login/")

    expect(phone_page.get_by_role("button", name="Log in")).to_be_visible()
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 360


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("tideline/app.css", "text/css"),
        ("tideline/vendor/htmx-2.0.11.min.js", "text/javascript"),
    ],
)
def test_static_files_are_served_by_the_production_server(
    app_server: AppServer, path: str, content_type: str
):
    response = requests.get(f"{app_server.url}/static/{path}", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == content_type
    assert "max-age=" in response.headers["Cache-Control"]
    assert response.content == (ROOT / "tasks" / "static" / path).read_bytes()


def test_the_api_docs_load_in_the_browser_from_the_app_alone(page: Page, app_server: AppServer):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto("/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Tideline API")
    page.wait_for_load_state("networkidle")
    assert f"{app_server.url}/api/schema/" in requested
    assert [url for url in requested if not url.startswith(f"{app_server.url}/")] == []


def test_e_mails_sent_by_the_app_can_be_read_by_the_tests(app_server: AppServer):
    app_server.manage("sendtestemail", "carol@example.com")

    sent = [message for message in app_server.emails() if message["To"] == "carol@example.com"]
    assert len(sent) == 1
    assert sent[0]["Subject"].startswith("Test email from")
