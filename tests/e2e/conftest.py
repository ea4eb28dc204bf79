"""Fixtures for the browser journeys: the app under gunicorn, headless Chromium, pages.

``app_server`` and ``browser`` live for the whole e2e package (once per run), and are shut
down when pytest leaves ``tests/e2e``: while Playwright's sync API is started, the test
thread has a running asyncio loop, and Django would refuse database access in the tests that
follow ("SynchronousOnlyOperation"). For the same reason e2e tests never use the test
database: they set up data through the app (pages, API) or ``app_server.manage(...)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import REQUIRE_SERVICES
from tests.e2e.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    AppServer,
    failure_screenshot_path,
    run_app_server,
)

E2E_DIR = Path(__file__).resolve().parent
DEFAULT_TIMEOUT_MS = 10_000
DB_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server"}
LOG_OFFSET = pytest.StashKey[int]()


def require_browser() -> None:
    """Skip when Chromium is missing, or fail under REQUIRE_SERVICES=1."""
    if os.access(CHROMIUM, os.X_OK):
        return
    message = f"the browser is not installed at {CHROMIUM} (apt-get install chromium)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in item.path.parents and DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(
                f"{item.nodeid}: e2e tests drive a separate server and cannot use the test "
                "database; set data up through the app or app_server.manage(...)"
            )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if any(marker.args[:1] == ("browser",) for marker in item.iter_markers("service")):
        require_browser()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item; on a failed test, add a screenshot of every
    open page and the server log written during the test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    funcargs = getattr(item, "funcargs", {})
    server = funcargs.get("app_server")
    if report.when == "setup" and report.passed and server is not None:
        item.stash[LOG_OFFSET] = server.log_size()
    if report.when == "call" and report.failed:
        for name, suffix in (("page", ""), ("phone_page", "-phone")):
            page = funcargs.get(name)
            if page is None or page.is_closed():
                continue
            path = failure_screenshot_path(item.name + suffix)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=path, full_page=True)
                report.sections.append((f"screenshot of {name}", str(path)))
            except Exception as exc:  # the page may have crashed; keep the real failure
                report.sections.append((f"screenshot of {name}", f"not taken: {exc}"))
        if server is not None:
            log = server.log_since(item.stash.get(LOG_OFFSET, 0))
            report.sections.append((f"app server log ({server.log_path})", log))
    return report


@pytest.fixture(scope="package")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """Tideline under gunicorn (2 workers, DEBUG off) on a fresh database of its own."""
    with run_app_server(tmp_path_factory.mktemp("app_server")) as server:
        yield server


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, driven by Playwright (never a downloaded browser)."""
    require_browser()
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def _page(browser: Browser, app_server: AppServer, **options) -> Iterator[Page]:
    context = browser.new_context(base_url=app_server.url, **options)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, app_server: AppServer) -> Iterator[Page]:
    """A fresh desktop browser tab (1280x900) on the app; relative URLs work in goto()."""
    yield from _page(browser, app_server, viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone_page(browser: Browser, app_server: AppServer) -> Iterator[Page]:
    """A fresh phone-sized touch tab (360x740)."""
    yield from _page(
        browser,
        app_server,
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
    )
