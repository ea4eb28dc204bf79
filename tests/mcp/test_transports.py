"""An assistant's session through the ``mcp`` SDK's own clients, against Tideline as it runs:
``manage.py mcp --user alice`` over stdio, and the app as production serves it (gunicorn with
two uvicorn workers, ``AppProcess``) over streamable HTTP with an API token as the Bearer
token. Both on a database of their own (PostgreSQL when
DATABASE_URL names one, else a SQLite file), with the embedded background worker."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.support.processes import ROOT, AppProcess, manage, scratch_postgres_database

pytestmark = pytest.mark.slow

#: How long the background worker may take to create a completed task's next instance.
SPAWN_TIMEOUT = 20.0

#: alice and bob, each with an API token; alice also with a revoked and an expired one.
SETUP = """
import datetime as dt, json
from django.contrib.auth import get_user_model
from tasks import services
from tasks.models import ApiToken

secrets = {}
for name in ("alice", "bob"):
    user = get_user_model().objects.create_user(name, f"{name}@example.com", "a-long-password-1")
    services.profile_get(user=user)
    _, secrets[name] = services.api_token_create(user=user, name="Assistant")
alice = get_user_model().objects.get(username="alice")
revoked, secrets["revoked"] = services.api_token_create(user=alice, name="Old laptop")
services.api_token_revoke(token=revoked)
expired, secrets["expired"] = services.api_token_create(user=alice, name="Expired")
ApiToken.objects.filter(pk=expired.pk).update(expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
print(json.dumps(secrets))
"""


@dataclass
class Site:
    env: dict[str, str]
    url: str
    tokens: dict[str, str]
    workdir: Path

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp/"

    def stdio_client(self, username: str) -> Client:
        server = StdioServerParameters(
            command=sys.executable,
            args=["manage.py", "mcp", "--user", username],
            env=self.env,
            cwd=str(ROOT),
        )
        errlog = (self.workdir / f"stdio-{username}.log").open("a")
        return Client(stdio_client(server, errlog=errlog), read_timeout_seconds=30)

    @contextlib.asynccontextmanager
    async def http_client(self, token: str):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(self.mcp_url, http_client=http)
            async with Client(transport, read_timeout_seconds=30) as client:
                yield client

    def post(self, path: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            content = error.read()
            is_json = error.headers.get_content_type() == "application/json"
            return error.code, json.loads(content) if is_json else {"text": content.decode()}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("mcp-site")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "todo_project.settings",
        "DEBUG": "false",
        "SECRET_KEY": "mcp-tests-only-" + os.urandom(16).hex(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TIDELINE_VAR_DIR": str(workdir / "var"),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "TIDELINE_BACKGROUND": "true",
        "DAPR_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    database_url = os.environ.get("DATABASE_URL", "")
    with contextlib.ExitStack() as stack:
        if database_url.startswith(("postgres://", "postgresql://")):
            env["DATABASE_URL"] = stack.enter_context(
                scratch_postgres_database(database_url, "tideline_mcp_")
            )
        manage(env, "migrate", "--noinput", "-v0")
        tokens = json.loads(manage(env, "shell", "-v0", "-c", SETUP).strip().splitlines()[-1])
        app = AppProcess("the app server", env, workdir / "app.log").start()
        stack.callback(app.stop)
        url = app.url
        yield Site(env=env, url=url, tokens=tokens, workdir=workdir)


def data(result) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content


def refusal(result) -> dict:
    assert result.is_error
    return json.loads(result.content[0].text)


TOOLS = {
    "list_tasks",
    "get_task",
    "add_task",
    "update_task",
    "complete_task",
    "reopen_task",
    "delete_task",
    "list_categories",
    "list_tags",
    "preview_recurrence",
}


async def assistant_session(client: Client) -> None:
    """Add a repeating task by quick add, find it among today's, complete it, and see its
    next instance appear, due on the next Monday."""
    assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS

    added = data(
        await client.call_tool("add_task", {"text": "Water plants every monday starting today p2"})
    )
    assert (added["title"], added["priority"]) == ("Water plants", "high")
    assert added["recurrence_rule"] == "FREQ=WEEKLY;BYDAY=MO"

    today = data(await client.call_tool("list_tasks", {"view": "today"}))
    assert added["id"] in [task["id"] for task in today["results"]]

    completed = data(await client.call_tool("complete_task", {"task_id": added["id"]}))
    assert completed["completed"] is True
    next_due = dt.datetime.fromisoformat(completed["next_occurrence_at"])
    assert next_due.weekday() == 0  # a Monday

    deadline = time.monotonic() + SPAWN_TIMEOUT
    while True:
        pending = data(
            await client.call_tool("list_tasks", {"search": "Water plants", "status": "pending"})
        )
        spawned = [task for task in pending["results"] if task["parent"] == added["id"]]
        if spawned:
            break
        assert time.monotonic() < deadline, "the next instance was not created"
        await anyio.sleep(0.2)
    assert dt.datetime.fromisoformat(spawned[0]["due_date"]) == next_due
    assert spawned[0]["recurrence_description"] == "every week on Monday"


def test_a_session_over_stdio(site: Site):
    async def run():
        async with site.stdio_client("alice") as client:
            await assistant_session(client)

    anyio.run(run)


def test_a_session_over_streamable_http(site: Site):
    async def run():
        async with site.http_client(site.tokens["alice"]) as client:
            await assistant_session(client)

    anyio.run(run)


def test_another_users_token_sees_nothing_of_alices(site: Site):
    async def run():
        async with site.http_client(site.tokens["alice"]) as alice:
            task = data(await alice.call_tool("add_task", {"title": "Alice's surprise party"}))
        async with site.http_client(site.tokens["bob"]) as bob:
            assert data(await bob.call_tool("list_tasks", {}))["count"] == 0
            for tool in ("get_task", "complete_task", "delete_task"):
                answer = refusal(await bob.call_tool(tool, {"task_id": task["id"]}))
                assert answer == {"detail": f"Task {task['id']} not found."}, tool
            today = await bob.read_resource("tideline://views/all")
            assert json.loads(today.contents[0].text)["count"] == 0
        async with site.http_client(site.tokens["alice"]) as alice:
            still = data(await alice.call_tool("get_task", {"task_id": task["id"]}))
            assert still["completed"] is False

    anyio.run(run)


def test_bad_input_is_a_tool_error_naming_the_field(site: Site):
    async def run():
        async with site.http_client(site.tokens["alice"]) as client:
            answer = await client.call_tool("add_task", {"title": "Pay", "priority": "hgh"})
            assert refusal(answer) == {"priority": ['"hgh" is not a valid choice.']}

    anyio.run(run)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "Authentication credentials were not provided"),
        ("Bearer tdl_not-a-token", "Invalid token: it is wrong, or it was revoked."),
        ("Bearer {revoked}", "Invalid token: it is wrong, or it was revoked."),
        ("Bearer {expired}", "This token expired at 2020-01-01T00:00:00Z: create a new one."),
        ("Token {alice}", "Authentication credentials were not provided"),
    ],
)
def test_without_a_valid_bearer_token_the_answer_is_401(site: Site, authorization, detail):
    headers = dict(ACCEPT)
    if authorization:
        headers["Authorization"] = authorization.format(**site.tokens)

    status, body = site.post("/mcp/", INITIALIZE, headers)

    assert status == 401
    assert body["detail"].startswith(detail)


def test_a_valid_token_is_answered_and_the_rest_is_django(site: Site):
    headers = {**ACCEPT, "Authorization": f"Bearer {site.tokens['alice']}"}
    status, body = site.post("/mcp/", INITIALIZE, headers)
    assert status == 200
    assert body["result"]["serverInfo"]["name"] == "Tideline"

    status, body = site.post(
        "/api/tasks/",
        {"title": "Through the API"},
        {"Authorization": f"Token {site.tokens['bob']}"},
    )
    assert (status, body["title"]) == (201, "Through the API")


def test_a_host_outside_allowed_hosts_is_400_and_a_large_body_413(site: Site):
    headers = {**ACCEPT, "Authorization": f"Bearer {site.tokens['alice']}"}

    status, body = site.post("/mcp/", INITIALIZE, {**headers, "Host": "tideline.evil.example"})
    assert (status, body) == (400, {"detail": "Invalid Host header."})

    # The length is refused before the body is read: announce it, send none.
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(site.url).port, timeout=10)
    connection.putrequest("POST", "/mcp/")
    for name, value in {**headers, "Content-Type": "application/json"}.items():
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(2_700_000))  # over DATA_UPLOAD_MAX_MEMORY_SIZE
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()


def test_stdio_refuses_a_user_who_does_not_exist(site: Site):
    with pytest.raises(AssertionError, match="No active user named 'nobody'"):
        manage(site.env, "mcp", "--user", "nobody")
