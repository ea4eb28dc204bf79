"""What every page view shares: login, the viewer's time zone, htmx-aware redirects."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from ..selectors import user_timezone


def user_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page for a signed-in user, rendered in the user's time zone."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        with timezone.override(user_timezone(request.user)):
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        return response

    return wrapper


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` parameter if it points into this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def redirect_after(request: HttpRequest, to: str) -> HttpResponse:
    """After a write: a client-side redirect for htmx, a plain 303 otherwise."""
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(to)
    return redirect(to)
