"""``Authorization: Token <secret>`` against the users' named API tokens (``ApiToken``)."""

from __future__ import annotations

import datetime as dt

from rest_framework import authentication, exceptions

from . import selectors, services

INVALID_TOKEN_MESSAGE = "Invalid token: it is wrong, or it was revoked."


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing (``Token`` keyword, one credential), checked against the stored
    digests. An expired token is refused with its date, so a script's owner knows to create
    a new one; its last use is recorded at most once a minute."""

    def authenticate_credentials(self, key: str):
        token = selectors.api_token_for_secret(secret=key)
        if token is None:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN_MESSAGE)
        if token.is_expired():
            expired = token.expires_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise exceptions.AuthenticationFailed(
                f"This token expired at {expired}: create a new one."
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        services.api_token_mark_used(token=token)
        return token.user, token
