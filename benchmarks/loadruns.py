"""gunicorn (2 workers, the project's gunicorn.conf.py) + wrk: the app's list, detail and
create beside plain Django views doing the same SQL, in the same server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .background import ROOT, _free_port
from .cases import Goal, Result
from .data import Size, secret_for

SECONDS = 7  # per variant: a case (app and plain) stays within ~15 s
LUA = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "Token {token}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
"""


def _server(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        # The embedded default as deployed: each worker runs its background thread, which
        # relays the creates' outbox rows to the in-process consumers.
        "TIDELINE_BACKGROUND": "true",
        "DAPR_ENABLED": "false",
        "DJANGO_SETTINGS_MODULE": "todo_project.settings",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind",
         f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "benchmarks.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            return process
        except requests.RequestException:
            time.sleep(0.3)
    process.terminate()
    process.wait(30)
    raise RuntimeError("gunicorn did not start")


def _wrk(url: str, token: str, method: str = "GET", body: str = "") -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(method=method, token=token, body=body))
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{SECONDS}s", "-s", script.name, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    Path(script.name).unlink()
    if "Non-2xx" in out:
        raise AssertionError(f"wrk {method} {url}: error responses\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def run(connection, size: Size, *, only: set[str] | None, log=print) -> list[Result]:
    with connection.cursor() as cur:
        cur.execute("SELECT max(id) FROM tasks_task WHERE user_id = 1")
        detail_id = cur.fetchone()[0]
    connection.close()
    token = secret_for(0, size)
    port = _free_port()
    server = _server(port)
    base = f"http://127.0.0.1:{port}"
    body = '{"title": "Send invoice to the client", "tags": ["work", "Errands"]}'
    detail = f"tasks/{detail_id}/"
    postgresql = connection.vendor == "postgresql"

    def goal(share: float) -> Goal | None:
        return Goal(share=share) if postgresql else None  # the goals are PostgreSQL's

    cases = {
        "load: list": (goal(0.6), "/api/tasks/?page_size=50", "/bench/plain/tasks/", "GET"),
        "load: detail": (None, f"/api/{detail}", f"/bench/plain/{detail}", "GET"),
        "load: create": (goal(0.3), "/api/tasks/", "/bench/plain/tasks/create/", "POST"),
    }
    results = []
    try:
        for name, (goal, app_path, plain_path, method) in cases.items():
            if only and name not in only:
                continue
            app = _wrk(base + app_path, token, method, body if method == "POST" else "")
            plain = _wrk(base + plain_path, token, method, body if method == "POST" else "")
            results.append(
                Result(name, {}, goal=goal, share=app / plain,
                       note=f"{app:.0f} req/s app, {plain:.0f} req/s plain")
            )  # fmt: skip
            log(f"  {name}: {app:.0f} vs {plain:.0f} req/s")
    finally:
        server.terminate()
        server.wait(30)
    return results
