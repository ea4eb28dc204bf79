"""The README's walkthroughs, run as they stand against a fresh ``make run``.

``make run PORT=<free port>`` serves the app as a newcomer starts it (migrate, the demo user,
the server; DEBUG and SITE_URL as the Makefile exports them) on a database of its own. Then
every shell block of README.md runs in order in one bash in the checkout, with the server's
URL in place of ``http://127.0.0.1:8000``, and each block's requests must answer what the
README shows after it (tests/support/readme.py has the convention).
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import free_port, scratch_postgres_database
from tests.support.readme import (
    ELLIPSIS,
    README_URL,
    BashSession,
    Block,
    console_line_pattern,
    mismatches,
    parse_blocks,
    parse_shown_json,
)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
STARTUP_TIMEOUT = 90.0
BLOCK_TIMEOUT = 60.0
CONSOLE_TIMEOUT = 30.0
#: An object's URL with a literal id (``$API/tasks/1/``): ids come from the answers.
HARD_CODED_ID = re.compile(r"/api/\w+/\d+/|\$API/\w+/\d+/")


class MakeRun:
    """``make run PORT=<port>`` in its own process group, its console in ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log_path
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                ["make", "run", f"PORT={self.port}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"make run did not serve {self.url}/healthz:\n{self.console()}")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=5)

    def console(self, offset: int = 0) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def console_size(self) -> int:
        return self.log_path.stat().st_size


@contextlib.contextmanager
def make_run(workdir: Path) -> Iterator[tuple[MakeRun, dict[str, str]]]:
    """A fresh ``make run`` and the environment of a shell beside it (same database)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "todo_project.settings",
        "TIDELINE_VAR_DIR": str(workdir / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL", "")
        if database_url.startswith(("postgres://", "postgresql://")):
            env["DATABASE_URL"] = stack.enter_context(
                scratch_postgres_database(database_url, "tideline_readme_")
            )
        server = MakeRun(env, workdir / "make-run.log")
        stack.callback(server.stop)
        server.start()
        yield server, env


def _substituted(text: str, url: str) -> str:
    return text.replace(README_URL, url)


def _check_block(block: Block, session: BashSession, server: MakeRun) -> None:
    where = f"README.md:{block.line}"
    console_offset = server.console_size()
    try:
        requests = session.run(_substituted(block.text, server.url), timeout=BLOCK_TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}\n{block.text}") from None
    shown = block.answers
    if len(requests) < len(shown):
        pytest.fail(f"{where}: made {len(requests)} requests, the README shows {len(shown)}")
    unshown = requests[: len(requests) - len(shown)]
    for request in unshown:
        assert request.status < 400, (
            f"{where}: a request answered {request.status} {request.body}\n{block.text}"
        )
    for answer, request in zip(shown, requests[len(unshown) :], strict=True):
        assert request.status == answer.status, (
            f"{where}: answered {request.status}, the README shows {answer.status}: "
            f"{request.body}\n{block.text}"
        )
        if answer.body is not None:
            try:
                actual = json.loads(request.body)
            except ValueError:
                pytest.fail(f"{where}: the answer is not JSON: {request.body!r}\n{block.text}")
            body = json.loads(_substituted(json.dumps(answer.body), server.url))
            problems = mismatches(body, actual)
            assert not problems, (
                f"{where}: the answer differs from the README's:\n  "
                + "\n  ".join(problems)
                + f"\nanswer: {request.body}\n{block.text}"
            )
    if block.console:
        _wait_for_console(block, server, console_offset, where)


def _wait_for_console(block: Block, server: MakeRun, offset: int, where: str) -> None:
    shown = [_substituted(line, server.url) for line in block.console]
    patterns = [console_line_pattern(line) for line in shown]
    deadline = time.monotonic() + CONSOLE_TIMEOUT
    while True:
        lines = server.console(offset).splitlines()
        remaining = iter(lines)
        missing = [
            line
            for line, pattern in zip(shown, patterns, strict=True)
            if not any(pattern.fullmatch(printed) for printed in remaining)
        ]
        if not missing:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"{where}: the server's console never printed {missing[0]!r}; it printed:\n"
                + "\n".join(lines[-60:])
            )
        time.sleep(0.5)


@pytest.mark.slow
def test_every_walkthrough_of_the_readme_runs_against_make_run_and_answers_as_it_says(
    tmp_path: Path,
) -> None:
    blocks = parse_blocks(README.read_text())
    assert sum(len(block.answers) for block in blocks) >= 20, "the README shows its answers"
    for block in blocks:  # another user's, or nobody's, on a newcomer's server
        assert not HARD_CODED_ID.search(block.text), f"README.md:{block.line}: a hard-coded id"
    with make_run(tmp_path) as (server, env):
        session = BashSession(tmp_path, env, cwd=ROOT)
        try:
            for block in blocks:
                _check_block(block, session, server)
        finally:
            session.close()


def test_a_shown_answer_matches_on_what_it_shows_and_dots_stand_for_the_rest() -> None:
    shown = parse_shown_json('{"id": ..., "title": "Buy milk", "tags": ["home", ...], ...}')
    answer = {"id": 7, "title": "Buy milk", "tags": ["home", "shop"], "completed": False}

    assert mismatches(shown, answer) == []
    assert mismatches(shown, {**answer, "title": "Buy bread"}) == [
        "$.title: 'Buy bread' != 'Buy milk'"
    ]
    assert mismatches(parse_shown_json('{"id": ..., "title": "Buy milk"}'), answer) == [
        "$: fields the README does not show: ['completed', 'tags']"
    ]
    assert mismatches(parse_shown_json('{"results": [{"title": "A"}]}'), {"results": []}) == [
        "$.results: 0 items, the README shows 1: []"
    ]
    assert mismatches(parse_shown_json('{"token": "tdl_..."}'), {"token": "tdl_x1"}) == []


def test_blocks_run_unless_marked_and_carry_the_answers_shown_after_them() -> None:
    blocks = parse_blocks(
        "```sh no-run\nmake run\n```\n\n"
        "```sh\ncurl -s $API/tasks/\n```\n\n"
        '```http\nHTTP/1.1 200 OK\n\n{"count": 0, ...}\n\nHTTP/1.1 204 No Content\n```\n\n'
        "```text console\nSubject: ...\n```\n"
    )

    assert [block.text for block in blocks] == ["curl -s $API/tasks/\n"]
    assert [(answer.status, answer.body) for answer in blocks[0].answers] == [
        (200, {"count": 0, ELLIPSIS: None}),
        (204, None),
    ]
    assert blocks[0].console == ["Subject: ..."]


def _operator_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A newcomer's shell: no DEBUG, no SECRET_KEY, no settings module, the checkout's var/
    moved to ``tmp_path``."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "TIDELINE_VAR_DIR": str(tmp_path / "var"),
        **extra,
    }


def _make(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"make {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _in_a_terminal(args: list[str], env: dict[str, str], answers: list[tuple[str, str]]) -> str:
    """Run ``args`` in a pseudo-terminal, typing each answer once its prompt shows; all it
    printed."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the command, with the terminal as its own
        os.chdir(ROOT)
        os.execvpe(args[0], args, env)
    printed = b""
    pending = list(answers)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if pending and pending[0][0].encode() in printed:
            os.write(terminal, pending.pop(0)[1].encode() + b"\n")
            printed += b"\n"
        ready, _, _ = select.select([terminal], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the command ended and closed the terminal
            chunk = b""
        if not chunk:
            break
        printed += chunk
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    text = printed.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0 and not pending, text
    return text


def test_make_superuser_asks_for_an_admin_on_the_embedded_default_and_make_shell_sees_it(
    tmp_path: Path,
) -> None:
    env = _operator_env(tmp_path)
    _make(env, "migrate")
    printed = _in_a_terminal(
        ["make", "--no-print-directory", "superuser"],
        env,
        [
            ("Username", "grace"),
            ("Email address", "grace@example.com"),
            ("Password:", "cobol-compiler-1959"),
            ("Password (again)", "cobol-compiler-1959"),
        ],
    )
    assert "Superuser created successfully." in printed

    shown = _make(
        env,
        "shell",
        "ARGS=-c 'from django.contrib.auth.models import User; "
        'print(User.objects.get(username="grace").is_superuser)\'',
    )
    assert shown.splitlines()[-1] == "True"


def test_site_url_follows_the_port_make_serves_on_unless_it_is_set(tmp_path: Path) -> None:
    show = "ARGS=-c 'from django.conf import settings; print(settings.SITE_URL)'"

    assert _make(_operator_env(tmp_path), "shell", "PORT=8101", show).splitlines()[-1] == (
        "http://127.0.0.1:8101"
    )
    assert _make(_operator_env(tmp_path), "shell", show).splitlines()[-1] == (
        "http://127.0.0.1:8000"
    )
    configured = _operator_env(tmp_path, SITE_URL="https://tasks.example.com")
    assert _make(configured, "shell", "PORT=8101", show).splitlines()[-1] == (
        "https://tasks.example.com"
    )


def test_the_first_make_run_says_what_it_does_and_shows_pips_progress(tmp_path: Path) -> None:
    planned = _make(_operator_env(tmp_path), "--dry-run", "run", f"VENV={tmp_path / 'venv'}")

    assert re.findall(r'echo "==> (\w+)', planned) == [
        "Creating",
        "Upgrading",
        "Installing",
        "Migrating",
        "Loading",
        "Serving",
    ]
    assert re.search(r"Installing \d+ pinned packages", planned), planned
    install = next(line for line in planned.splitlines() if "-r requirements-dev.txt" in line)
    assert "--quiet" not in install, "pip's own progress is shown"
