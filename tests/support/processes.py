"""Tideline as it is deployed, for tests: app processes under gunicorn on a scratch database.

``scratch_postgres_database`` makes a fresh database (dropped afterwards, and so are those left
by killed runs); ``AppProcess`` runs ``gunicorn todo_project.asgi`` with an environment of the
test's choosing and can be stopped, restarted with a changed environment, and read (its log).
Tests talk to such processes over HTTP only, never through the test process's database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def scratch_postgres_database(database_url: str, prefix: str) -> Iterator[str]:
    """A new database ``<prefix><pid>`` on DATABASE_URL's server, dropped afterwards.

    Databases with the prefix left by runs whose process is gone are dropped first."""
    admin_url = with_database(database_url, "postgres")
    name = f"{prefix}{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        existing = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            [prefix.replace("_", r"\_") + "%"],
        ).fetchall()
        for (stale,) in existing:
            pid = stale.removeprefix(prefix)
            if stale == name or (pid.isdigit() and not _pid_alive(int(pid))):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(stale))
                )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(database_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``manage.py *args`` with ``env``; its output, or AssertionError with it."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


class AppProcess:
    """``gunicorn todo_project.asgi`` on ``127.0.0.1:<port>`` (or, with ``dev_server``, one
    uvicorn process as ``make run`` serves) with ``env``, logging to
    ``log_path``. ``start()`` waits for ``/healthz``; ``restart(**changes)`` stops it (a
    graceful SIGTERM) and starts it again with some variables changed."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_path: Path,
        *,
        port: int = 0,
        workers: int = 2,
        dev_server: bool = False,
    ) -> None:
        self.name = name
        self.dev_server = dev_server
        self.env = dict(env)
        self.log_path = log_path
        self.port = port or free_port()
        self.workers = workers
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> AppProcess:
        if self._process is not None:
            return self
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_until_healthy()
        return self

    def _command(self) -> list[str]:
        if self.dev_server:  # as `make run` serves: one uvicorn process
            return [
                *(sys.executable, "-m", "uvicorn", "todo_project.asgi:application"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--timeout-graceful-shutdown", "5"),
            ]
        return [
            *(sys.executable, "-m", "gunicorn", "todo_project.asgi"),
            *("--bind", f"127.0.0.1:{self.port}"),
            *("--workers", str(self.workers)),
            *("--graceful-timeout", "5", "--access-logfile", "-"),
        ]

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {self.url}/healthz:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self, **changes: str) -> None:
        self.stop()
        self.env.update(changes)
        self.start()

    def log_tail(self, max_lines: int = 80) -> str:
        if not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-max_lines:])
