"""What every page view shares: login, the viewer's time zone, htmx-aware redirects, the
task lookup, service errors on forms and the delete confirmation page."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from ..models import Task
from ..selectors import task_get, user_timezone


def user_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page for a signed-in user, rendered in the user's time zone."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        with timezone.override(user_timezone(request.user)):
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        # Pages change under the user (a task completed on the page they go Back to):
        # browsers must ask again rather than show a cached copy.
        add_never_cache_headers(response)
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


_T = TypeVar("_T")


def selected_or_404(get: Callable[..., _T], **kwargs: Any) -> _T:
    """What the selector ``get`` finds with ``kwargs``; a missing object (or another
    user's, which selectors never find) is a 404."""
    try:
        return get(**kwargs)
    except ObjectDoesNotExist:
        raise Http404 from None


def get_task_or_404(request: HttpRequest, task_id: int) -> Task:
    """The signed-in user's task, or a 404 (another user's task does not exist)."""
    return selected_or_404(task_get, user=request.user, task_id=task_id)


def add_service_errors(
    form: forms.Form, exc: ValidationError, field_map: Mapping[str, str] | None = None
) -> None:
    """Show a service's ValidationError on ``form``, in the service's (the API's) words.

    Each error goes beside the field it names, or the one ``field_map`` maps that name to
    when the form calls it otherwise; errors about anything else go to the top of the form.
    """
    field_map = field_map or {}
    errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for name, messages in errors.items():
        field = field_map.get(name, name) if name else None
        form.add_error(field if field in form.fields else None, messages)


def confirm_delete(
    request: HttpRequest,
    *,
    title: str,
    consequence: str,
    cancel_url: str,
    confirm: str,
    next_url: str = "",
) -> HttpResponse:
    """The page that asks before a delete (works without JavaScript); it posts back to the
    same address, with ``next_url`` as ``next`` when given."""
    context = {
        "title": title,
        "consequence": consequence,
        "cancel_url": cancel_url,
        "confirm": confirm,
        "next": next_url,
    }
    return render(request, "tasks/confirm_delete.html", context)
