"""A small client for the Dapr sidecar's HTTP API (publish, bulk publish, state, jobs).

One ``requests.Session`` per process, timeouts on every call, ``dapr-api-token`` when set.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from django.conf import settings

_local = threading.local()


class DaprError(Exception):
    """A sidecar call failed. ``status`` is None when the sidecar could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def error_code(self) -> str:
        """daprd's ``errorCode`` (e.g. ``ERR_PUBSUB_FORBIDDEN``), "" when the body has none."""
        code = self.body.get("errorCode") if isinstance(self.body, dict) else None
        return code if isinstance(code, str) else ""


def base_url() -> str:
    return f"http://{settings.DAPR_HTTP_HOST}:{settings.DAPR_HTTP_PORT}"


def session() -> requests.Session:
    if getattr(_local, "session", None) is None:
        _local.session = requests.Session()
    return _local.session


def request(method: str, path: str, **kwargs) -> requests.Response:
    """Call the sidecar; raises ``DaprError`` on a connection failure or a non-2xx answer."""
    headers = kwargs.pop("headers", {})
    if settings.DAPR_API_TOKEN:
        headers["dapr-api-token"] = settings.DAPR_API_TOKEN
    kwargs.setdefault("timeout", settings.DAPR_TIMEOUT_SECONDS)
    ok_statuses = kwargs.pop("ok_statuses", ())
    try:
        response = session().request(method, base_url() + path, headers=headers, **kwargs)
    except requests.RequestException as exc:
        raise DaprError(f"sidecar unreachable: {exc}") from exc
    if response.status_code >= 300 and response.status_code not in ok_statuses:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        # daprd's error body; a bulk partial failure has an errorCode but no message
        message = (body.get("message") or body.get("errorCode")) if isinstance(body, dict) else body
        raise DaprError(
            f"{method} {path} -> {response.status_code}: {message}",
            status=response.status_code,
            body=body,
        )
    return response


def runtime_version() -> str:
    """The sidecar's ``runtimeVersion`` from ``GET /v1.0/metadata`` ("1.18.3"; "edge" for a
    build of unreleased code; "" when missing). ``DaprError`` while the sidecar cannot answer."""
    response = request("GET", "/v1.0/metadata")
    try:
        body = response.json()
    except ValueError:
        return ""
    version = body.get("runtimeVersion") if isinstance(body, dict) else None
    return version if isinstance(version, str) else ""
