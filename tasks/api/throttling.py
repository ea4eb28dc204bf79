"""The API's throttles (rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``) and the client
address that they and django-axes count by.

The two that every request passes (``anon``, ``user``) identify the caller and read the rate
as DRF's do, but count as a token bucket (the generic cell rate algorithm, GCRA): a rate of
``n`` per period lets ``n`` requests through at once, then one every period/n, so a caller
that keeps asking gets ``n`` per period. The cache holds one number per caller (when its
budget is whole again), so a request costs the same at 10/min as at 10,000/min; DRF's
throttle keeps the time of every request of the last period, unpickled and pickled again on
each request (600 floats, 5 KB to and from Redis, at the default ``user`` rate). The price:
a caller idle long enough to have its whole budget can send up to ``2n - 1`` within its
first period (the burst, and what refills meanwhile). Over the rate, ``Retry-After`` says
when the next request is allowed.

The scoped rates (``auth``, ``webhooks``: DRF's ``ScopedRateThrottle``) are low and keep
DRF's exact count, never more than ``n`` in any period, for the token and registration
endpoints that a password guesser would call.

The internal routes the sidecar and the kubelet call (``todo_project.hosts.INTERNAL_ROUTES``)
are never throttled: daprd delivers every event from one address, and a 429 is a redelivery.
"""

from __future__ import annotations

import math

from rest_framework import throttling
from rest_framework.request import Request

from todo_project.hosts import INTERNAL_ROUTES


class _CellRate(throttling.SimpleRateThrottle):
    """GCRA counting in place of ``SimpleRateThrottle``'s; the rate, cache key and cache are
    DRF's (a subclass lists DRF's throttle class first)."""

    cache_format = "throttle_gcra_%(scope)s_%(ident)s"
    #: Seconds of float error tolerated: summing period/n drifts by less than a microsecond,
    #: which would otherwise refuse the n-th request of a burst at rates like 9/min.
    _TOLERANCE = 1e-6
    _wait: float | None = None

    def allow_request(self, request: Request, view) -> bool:
        match = request.resolver_match
        if match is not None and match.url_name in INTERNAL_ROUTES:
            return True
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        if self.num_requests == 0:  # "0/min": every request refused, as DRF's does
            self._wait = self.duration
            return False
        now = self.timer()
        interval = self.duration / self.num_requests
        # When the caller's budget is whole again; absent (expired), it already is.
        full_at = max(self.cache.get(key, now), now) + interval
        over_by = full_at - now - self.duration
        if over_by > self._TOLERANCE:
            self._wait = over_by
            return False
        self.cache.set(key, full_at, math.ceil(full_at - now))
        return True

    def wait(self) -> float | None:
        """Seconds until the next request is allowed (DRF's ``Retry-After``)."""
        return self._wait


class AnonRateThrottle(throttling.AnonRateThrottle, _CellRate):
    """Anonymous requests, per client address (rate ``anon``)."""


class UserRateThrottle(throttling.UserRateThrottle, _CellRate):
    """Authenticated requests, per user (rate ``user``); anonymous ones per address."""


def client_ip(request) -> str:
    """The client's address as DRF's throttles see it (``NUM_PROXIES``): django-axes's
    ``AXES_CLIENT_IP_CALLABLE``, so lockouts and throttles agree on who is calling."""
    return throttling.BaseThrottle().get_ident(request)
