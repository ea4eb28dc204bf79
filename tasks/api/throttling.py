"""The API's throttles (rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``) and the client
address that they and django-axes count by.

The internal routes the sidecar and the kubelet call (``todo_project.hosts.INTERNAL_ROUTES``)
are never throttled: daprd delivers every event from one address, and a 429 is a redelivery.
"""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.request import Request

from todo_project.hosts import INTERNAL_ROUTES


class _InternalRoutesExempt:
    def allow_request(self, request: Request, view) -> bool:
        match = request.resolver_match
        if match is not None and match.url_name in INTERNAL_ROUTES:
            return True
        return super().allow_request(request, view)


class AnonRateThrottle(_InternalRoutesExempt, throttling.AnonRateThrottle):
    """Anonymous requests, per client address (rate ``anon``)."""


class UserRateThrottle(_InternalRoutesExempt, throttling.UserRateThrottle):
    """Authenticated requests, per user (rate ``user``); anonymous ones per address."""


def client_ip(request) -> str:
    """The client's address as DRF's throttles see it (``NUM_PROXIES``): django-axes's
    ``AXES_CLIENT_IP_CALLABLE``, so lockouts and throttles agree on who is calling."""
    return throttling.BaseThrottle().get_ident(request)
