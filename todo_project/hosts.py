"""The internal routes answer callers that name the pod by address.

daprd calls the app as ``127.0.0.1:<app-port>`` and the kubelet probes it with the pod IP:
Host headers no ``ALLOWED_HOSTS`` can list in advance (pod IPs change with every pod). For the
routes only they call (``INTERNAL_ROUTES``), a Host that is an IP literal or ``localhost`` is
accepted; every other route, and any other Host, still goes through ``ALLOWED_HOSTS``, so the
pages and the API answer 400 to ``Host: 10.244.1.7``. Nothing there builds a link from the
Host, and the event and job callbacks also require the app token.

django-allow-cidr was weighed and left out: it accepts the addresses on every route, needs the
cluster's pod CIDR (it differs per cluster, and some CNIs give pods node-subnet addresses), and
replaces ``settings.ALLOWED_HOSTS`` with ``["*"]`` at run time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.urls import Resolver404, resolve

#: The URL names (events/urls.py) of the routes the sidecar and the kubelet call.
INTERNAL_ROUTES = frozenset({"healthz", "readyz", "dapr-subscribe", "dapr-topic", "dapr-job"})


def is_address(domain: str) -> bool:
    """Whether a Host's domain is an IPv4 literal, a bracketed IPv6 literal or ``localhost``."""
    if domain == "localhost":
        return True
    if domain.startswith("[") and domain.endswith("]"):
        domain = domain[1:-1]
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return False
    return True


def is_internal(path: str) -> bool:
    try:
        return resolve(path).url_name in INTERNAL_ROUTES
    except Resolver404:
        return False


def _answers_as_sent(request: HttpRequest, host: str) -> bool:
    """Whether Django's own ``get_host`` already answers ``host`` (an allowed address, e.g.
    ``127.0.0.1``): then nothing needs changing, and the path need not be resolved."""
    try:
        return request.get_host() == host
    except DisallowedHost:
        return False


class InternalHostsMiddleware:
    """Lets an address Host through to the internal routes; first in ``MIDDLEWARE``.

    Django validates the Host whenever something calls ``request.get_host()`` (CommonMiddleware,
    the CSRF checks, absolute URLs) and raises ``DisallowedHost`` (400) for one not allowed.
    For an internal route reached by address, this request's ``get_host`` answers the Host as
    sent instead, once it is checked here; no other request changes.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        host = request.META.get("HTTP_HOST", "")
        domain, _port = split_domain_port(host)
        if (
            domain
            and is_address(domain)
            and not _answers_as_sent(request, host)
            and is_internal(request.path_info)
        ):
            request.get_host = lambda: host  # type: ignore[method-assign]
        return self.get_response(request)
