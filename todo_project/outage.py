"""The database out of reach: a 503 with ``Retry-After``, never a 500.

A request that needs the database while it cannot be reached (refused, lost, shutting down,
out of connections; SQLite: cannot open the file, or still locked after its busy timeout)
is answered 503 with ``Retry-After: DATABASE_RETRY_AFTER_SECONDS``: on the API (``/api/``)
the JSON ``{"detail": ..., "code": "database_unavailable"}``, elsewhere ``503.html``, a page
rendered without the database. Every other database error (bad SQL, a violated constraint, a
deadlock, a timeout) is a bug or contention, and stays a 500.

Three hooks, one per place a request meets the database:

- ``DatabaseUnavailableMiddleware.process_exception``: views and their templates;
- ``tasks.api.exceptions.exception_handler``: the API's views, whose errors DRF handles;
- ``server_error`` (the ``handler500`` of ``todo_project.urls``): anything else, e.g. the
  session middleware saving a session after the view.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

logger = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "The database is unavailable; try again shortly."
UNAVAILABLE_CODE = "database_unavailable"

#: PostgreSQL's SQLSTATEs of a connection out of reach: class 08 (connection exception),
#: the server shutting down or starting (57P01-57P03), too many connections (53300).
_PG_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
#: SQLite's primary result codes of the same: the file cannot be opened, or stays locked.
_SQLITE_UNAVAILABLE = {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY}


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now, as opposed to a bug."""
    if isinstance(exc, InterfaceError):  # the connection is closed or unusable
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if isinstance(cause, sqlite3.Error):
        return (getattr(cause, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_UNAVAILABLE
    sqlstate = getattr(cause, "sqlstate", None)
    # None: the driver's own connection failure (refused, reset, server closed it).
    return sqlstate is None or sqlstate.startswith(_PG_UNAVAILABLE)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """The 503: JSON on the API, else a page that needs no database."""
    seconds = settings.DATABASE_RETRY_AFTER_SECONDS
    headers = {"Retry-After": str(seconds)}
    if request.path.startswith("/api/"):
        body = {"detail": UNAVAILABLE_MESSAGE, "code": UNAVAILABLE_CODE}
        return JsonResponse(body, status=503, headers=headers)
    page = render_to_string("503.html", {"retry_after": seconds})  # no request: no context
    return HttpResponse(page, status=503, headers=headers)


class DatabaseUnavailableMiddleware:
    """Answers a view's (or its template's) lost database with the 503."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        logger.warning("Database unavailable: %s %s: %s", request.method, request.path, exception)
        return database_unavailable(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the 503 when the error escaping the views is the lost database."""
    exc = sys.exception()
    if exc is not None and is_database_unavailable(exc):
        return database_unavailable(request)
    return defaults.server_error(request)
