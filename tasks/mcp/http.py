"""The MCP server over streamable HTTP at ``/mcp/``, for a user's API token sent as
``Authorization: Bearer <token>``; ``with_mcp`` routes everything else to Django.

The SDK's session manager runs in stateless mode (each POST is answered on its own, so any
worker of any replica can serve it) inside the ASGI lifespan, which Django's ASGI app does
not handle: ``with_mcp`` hands the lifespan to the SDK's app.
"""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.transport_security import (
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    TransportSecuritySettings,
)
from rest_framework.exceptions import AuthenticationFailed
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ..authentication import ApiTokenAuthentication
from . import operations
from .server import acting_as, mcp_server

MCP_PATH = "/mcp/"
NO_CREDENTIALS = (
    "Authentication credentials were not provided: send Authorization: Bearer <API token>."
)


def _user_id_for_token(secret: str) -> int:
    """The id of the user whose API token this is (expiry and revocation checked, its use
    recorded, as for ``Authorization: Token``); raises ``AuthenticationFailed``."""
    user, _ = ApiTokenAuthentication().authenticate_credentials(secret)
    return user.pk


def _allowed_host(scope: Scope) -> bool:
    """Django's ``ALLOWED_HOSTS`` check, which the rest of the site gets from Django."""
    domain, _ = split_domain_port(Headers(scope=scope).get("host", ""))
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


async def _answer(send: Send, status: int, body: dict, headers: list | None = None) -> None:
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


async def _unauthorized(send: Send, detail: str) -> None:
    await _answer(send, 401, {"detail": detail}, [(b"www-authenticate", b'Bearer realm="api"')])


class BearerTokenAuth:
    """Lets a request through to the MCP app only with a valid API token, acting as its user
    (``server.acting_as``); otherwise a 401 saying why, as the API's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _allowed_host(scope):
            await _answer(send, 400, {"detail": "Invalid Host header."})
            return
        scheme, _, secret = Headers(scope=scope).get("authorization", "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret or " " in secret:
            await _unauthorized(send, NO_CREDENTIALS)
            return
        try:
            user_id = await sync_to_async(operations.as_request, thread_sensitive=True)(
                _user_id_for_token, secret
            )
        except AuthenticationFailed as exc:
            await _unauthorized(send, str(exc.detail))
            return
        except operations.Refused as refused:  # the database is out of reach
            retry = str(settings.DATABASE_RETRY_AFTER_SECONDS).encode()
            await _answer(send, 503, refused.detail, [(b"retry-after", retry)])
            return
        with acting_as(user_id):
            await self.app(scope, receive, send)


def with_mcp(django_app: ASGIApp) -> ASGIApp:
    """``django_app`` with the MCP server at ``MCP_PATH`` (and the lifespan that runs it)."""
    mcp_app = mcp_server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        # The API's own limit (a larger body is a 413), not the SDK's 4 MiB.
        max_request_body_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE or DEFAULT_MAX_REQUEST_BODY_SIZE,
        # The Host is checked against ALLOWED_HOSTS above; a page on another origin cannot
        # send the token (no CORS), so the SDK's own localhost-only check is off.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    authenticated = BearerTokenAuth(mcp_app)
    prefix = MCP_PATH.rstrip("/")

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await mcp_app(scope, receive, send)
        elif scope["type"] == "http" and (
            scope["path"] == prefix or scope["path"].startswith(MCP_PATH)
        ):
            await authenticated(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return application
