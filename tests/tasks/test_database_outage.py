"""The database out of reach (issue 11, item 4): a 503 with ``Retry-After``, JSON on the
API and a page elsewhere, for anonymous and logged-in requests; other errors stay 500s.

The outage is real: the connection is pointed at a closed port (PostgreSQL) or at a file in
a folder that does not exist (SQLite), so every query fails as the driver fails it.
"""

from __future__ import annotations

import socket
import sqlite3

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, ProgrammingError, connections
from django.test import Client, RequestFactory

from todo_project import urls
from todo_project.outage import is_database_unavailable, server_error

UNAVAILABLE = {
    "detail": "The database is unavailable; try again shortly.",
    "code": "database_unavailable",
}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def database_down(django_db_blocker, monkeypatch, tmp_path, settings):
    """From here on, the database cannot be reached; the real connection comes back after."""
    settings.DATABASE_RETRY_AFTER_SECONDS = 7
    database = connections["default"]
    if database.vendor == "sqlite":
        monkeypatch.setitem(database.settings_dict, "NAME", str(tmp_path / "gone" / "db"))
    else:
        monkeypatch.setitem(database.settings_dict, "HOST", "127.0.0.1")
        monkeypatch.setitem(database.settings_dict, "PORT", str(closed_port()))
    monkeypatch.setattr(database, "connection", None)  # the open one is set aside
    with django_db_blocker.unblock():
        yield


def assert_api_503(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "7"
    assert response.json() == UNAVAILABLE


def assert_page_503(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == "7"
    page = response.content.decode()
    assert "Temporarily unavailable" in page
    assert "try again in 7 seconds" in page


# --- the API -----------------------------------------------------------------------------


LOGIN = {"username": "ada", "password": "analytical-engine-1843"}
TOKEN = {"HTTP_AUTHORIZATION": "Token some-secret"}
TASK = {"title": "Pay rent"}


@pytest.mark.usefixtures("database_down")
@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("post", "/api/auth/token/", LOGIN, {}),
        ("post", "/api/auth/register/", {**LOGIN, "email": "ada@example.com"}, {}),
        ("get", "/api/tasks/", None, TOKEN),
        ("post", "/api/tasks/", TASK, TOKEN),
        ("post", "/api/tasks/", TASK, {**TOKEN, "HTTP_IDEMPOTENCY_KEY": "k1"}),
        ("get", "/api/tasks/", None, {"HTTP_COOKIE": "sessionid=a-logged-in-session"}),
    ],
    ids=["anonymous login", "anonymous signup", "token read", "token write", "keyed", "session"],
)
def test_the_api_answers_a_json_503_with_retry_after(method, path, body, headers):
    response = getattr(Client(), method)(path, body, content_type="application/json", **headers)

    assert_api_503(response)


@pytest.mark.usefixtures("database_down")
def test_an_api_request_needing_no_database_is_answered_as_usual():
    """Anonymous reads are refused by authentication alone: the 401 needs no database."""
    assert Client().get("/api/tasks/").status_code == 401


# --- the pages ---------------------------------------------------------------------------


@pytest.mark.usefixtures("database_down")
@pytest.mark.parametrize(
    ("method", "path", "cookies"),
    [
        ("get", "/", {"sessionid": "a-logged-in-session"}),
        ("get", "/settings/", {"sessionid": "a-logged-in-session"}),
        ("post", "/accounts/login/", {}),
    ],
    ids=["logged-in home", "logged-in settings", "anonymous login"],
)
def test_pages_answer_a_503_page_with_retry_after(method, path, cookies):
    client = Client()
    client.cookies.load(cookies)

    response = getattr(client, method)(path, {"username": "ada", "password": "pw"})

    assert_page_503(response)


def test_a_lost_database_escaping_the_views_is_a_503_too(settings):
    """``handler500`` covers what the middleware cannot: a middleware's own queries."""
    settings.DATABASE_RETRY_AFTER_SECONDS = 7
    assert urls.handler500 == "todo_project.outage.server_error"
    request = RequestFactory().get("/")
    try:
        raise OperationalError("connection refused") from psycopg.OperationalError("refused")
    except OperationalError:
        response = server_error(request)

    assert_page_503(response)


def test_any_other_error_escaping_the_views_stays_a_500():
    request = RequestFactory().get("/")
    try:
        raise ProgrammingError("column tasks_task.nope does not exist")
    except ProgrammingError:
        response = server_error(request)

    assert response.status_code == 500
    assert "Retry-After" not in response


# --- which errors mean "unavailable" -----------------------------------------------------


def django_error(cls, cause: BaseException) -> BaseException:
    try:
        raise cls(str(cause)) from cause
    except cls as exc:
        return exc


def sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        pytest.param(psycopg.OperationalError("connection refused"), True, id="refused"),
        pytest.param(psycopg.errors.ConnectionFailure(), True, id="08006 connection failure"),
        pytest.param(psycopg.errors.AdminShutdown(), True, id="57P01 shutting down"),
        pytest.param(psycopg.errors.CannotConnectNow(), True, id="57P03 starting up"),
        pytest.param(psycopg.errors.TooManyConnections(), True, id="53300 too many connections"),
        pytest.param(psycopg.InterfaceError("the connection is closed"), True, id="closed"),
        pytest.param(sqlite_error("unable to open database file", 14), True, id="sqlite cantopen"),
        pytest.param(sqlite_error("database is locked", 5), True, id="sqlite busy"),
        pytest.param(psycopg.errors.DeadlockDetected(), False, id="40P01 deadlock"),
        pytest.param(psycopg.errors.QueryCanceled(), False, id="57014 statement timeout"),
        pytest.param(psycopg.errors.LockNotAvailable(), False, id="55P03 lock timeout"),
        pytest.param(sqlite_error("no such table: tasks_task", 1), False, id="sqlite no table"),
        pytest.param(psycopg.errors.UndefinedColumn(), False, id="42703 undefined column"),
    ],
)
def test_only_a_database_out_of_reach_counts_as_unavailable(error, unavailable):
    """As Django raises them: its own class, the driver's error as the cause."""
    django_class = {
        psycopg.InterfaceError: InterfaceError,
        psycopg.errors.UndefinedColumn: ProgrammingError,
    }.get(type(error), OperationalError)

    assert is_database_unavailable(django_error(django_class, error)) is unavailable
    assert not is_database_unavailable(ValueError("not a database error"))
