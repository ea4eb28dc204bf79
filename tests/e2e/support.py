"""The browser tests' world: the real app in a subprocess, and helpers for journeys.

The app runs as a user would run it (``migrate``, then gunicorn with DEBUG off) on a database
of its own: a fresh PostgreSQL database when ``DATABASE_URL`` is set, else a temporary SQLite
file. The tests talk to it only over HTTP and through management commands, never through the
test process's Django database.

``vendor/axe-4.14.1.min.js`` is axe-core 4.14.1 from the npm registry (``npm pack
axe-core@4.14.1``, MPL-2.0, licence alongside), committed so the tests run offline.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page

from tests.support.processes import AppProcess, free_port, manage, scratch_postgres_database

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS_DIR = ROOT / "docs" / "screenshots"
FAILURES_DIR = SCREENSHOTS_DIR / "failures"
SCRATCH_DIR = ROOT / "var" / "screenshots"
AXE_SCRIPT = Path(__file__).resolve().parent / "vendor" / "axe-4.14.1.min.js"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

E2E_DATABASE_PREFIX = "tideline_e2e_"
#: The line the file-based e-mail backend writes after each message.
EMAIL_SEPARATOR = b"\n" + b"-" * 79 + b"\n"


@dataclass
class AppServer:
    """A running Tideline: ``url`` to browse, ``manage()`` for commands, ``emails()`` sent."""

    url: str
    env: dict[str, str]
    log_path: Path
    email_dir: Path

    def manage(self, *args: str, timeout: float = 120) -> str:
        """Run ``manage.py *args`` against the server's database; return its output."""
        return manage(self.env, *args, timeout=timeout)

    def emails(self) -> list[EmailMessage]:
        """Every e-mail the app (server or commands) has sent so far, oldest first."""
        files = sorted(self.email_dir.glob("*.log"), key=lambda p: (p.stat().st_mtime, p.name))
        messages = []
        for path in files:
            for chunk in path.read_bytes().split(EMAIL_SEPARATOR):
                if chunk.strip():
                    messages.append(email.message_from_bytes(chunk, policy=email.policy.default))
        return messages

    def wait_for_emails(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """The sent e-mails once there are at least ``count`` (background work sends late)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.emails()
            if len(messages) >= count or time.monotonic() > deadline:
                assert len(messages) >= count, f"{len(messages)} e-mails sent, expected {count}"
                return messages
            time.sleep(0.2)

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int = 0, max_lines: int = 200) -> str:
        """The server log from byte ``offset`` on (its last ``max_lines`` lines)."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-max_lines:])


@contextlib.contextmanager
def run_app_server(
    workdir: Path,
    *,
    as_make_run: bool = False,
    workers: int = 2,
    database_prefix: str = E2E_DATABASE_PREFIX,
    **settings: str,
) -> Iterator[AppServer]:
    """Migrate a fresh database and serve the app with gunicorn (``workers``, the
    environment's ``settings`` changed) until the block ends; or, ``as_make_run``, as
    ``make run`` does: DEBUG on, SQLite, one uvicorn process. A second server at once needs
    its own ``database_prefix``."""
    database_url = "" if as_make_run else os.environ.get("DATABASE_URL", "")
    with contextlib.ExitStack() as stack:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "DJANGO_SETTINGS_MODULE": "todo_project.settings",
            "DEBUG": "true" if as_make_run else "false",
            "SECRET_KEY": "e2e-tests-only-" + os.urandom(16).hex(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "TIDELINE_VAR_DIR": str(workdir / "var"),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(workdir / "emails"),
            "TIDELINE_BACKGROUND": "true",
            "DAPR_ENABLED": "false",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        if database_url.startswith(("postgres://", "postgresql://")):
            env["DATABASE_URL"] = stack.enter_context(
                scratch_postgres_database(database_url, database_prefix)
            )
        env.update(settings)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env["SITE_URL"] = url
        (workdir / "emails").mkdir(parents=True, exist_ok=True)
        server = AppServer(
            url=url, env=env, log_path=workdir / "server.log", email_dir=workdir / "emails"
        )
        server.manage("migrate", "--noinput", "-v0")
        app = AppProcess(
            "the app server",
            env,
            server.log_path,
            port=port,
            workers=workers,
            dev_server=as_make_run,
        ).start()
        stack.callback(app.stop)
        yield server


def sign_up(page: Page, username: str, password: str, email_address: str = "") -> None:
    """Create an account through the sign-up page; fails with the form's errors if refused."""
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("E-mail").fill(email_address or f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password (again)").fill(password)
    _submit_and_leave(page, "Create my account")


def log_in(page: Page, username: str, password: str) -> None:
    """Sign in through the login page; fails with the form's errors if refused."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    _submit_and_leave(page, "Log in")


def _submit_and_leave(page: Page, button: str) -> None:
    """Press the form's button; once the app redirects, wait for the next page. A form
    sent back (refused) fails at once with the errors shown on it."""
    form_path = urlsplit(page.url).path
    with page.expect_response(
        lambda r: r.request.method == "POST" and urlsplit(r.url).path == form_path
    ) as posted:
        page.get_by_role("button", name=button).click()
    response = posted.value
    if 300 <= response.status < 400 or "hx-redirect" in response.headers:
        page.wait_for_url(lambda url: urlsplit(url).path != form_path)
        return
    page.wait_for_load_state()
    errors = page.locator(".errorlist, [role=alert]").all_inner_texts()
    raise AssertionError(f"{form_path} refused the form ({response.status}): {errors}")


def check_accessibility(page: Page) -> None:
    """Fail when axe-core finds a serious or critical violation on the current page."""
    page.add_script_tag(path=str(AXE_SCRIPT))
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    lines = [
        f"- {v['id']} ({v['impact']}): {v['help']} -> "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:3])
        + (f" (+{len(v['nodes']) - 3} more)" if len(v["nodes"]) > 3 else "")
        for v in serious
    ]
    assert not serious, f"accessibility violations on {page.url}:\n" + "\n".join(lines)


def save_screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Write ``<name>.png``: into docs/screenshots/ (the README's pictures) only when
    ``TIDELINE_SCREENSHOTS=1`` asks for a refresh, else under var/screenshots/, so a test run
    leaves the checkout as it found it."""
    folder = SCREENSHOTS_DIR if os.environ.get("TIDELINE_SCREENSHOTS") == "1" else SCRATCH_DIR
    path = folder / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=full_page)
    return path


def failure_screenshot_path(test_name: str) -> Path:
    return FAILURES_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', test_name)}.png"
