"""The webhooks pages: add and remove endpoints on the settings page (the secret shown
once), an endpoint's delivery log with "Redeliver" and "Send test event", and the reminder
channels. Thin: forms validate, the services write."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from tasks.web.accounts import render_settings
from tasks.web.common import add_service_errors, confirm_delete, redirect_after, user_page

from . import selectors, services
from .forms import ReminderChannelsForm, WebhookForm
from .models import WebhookDelivery, WebhookEndpoint

#: Deliveries the log page shows (newest first); the API pages through all of them.
LOG_LENGTH = 50


def _endpoint_or_404(request: HttpRequest, endpoint_id: int) -> WebhookEndpoint:
    return get_object_or_404(selectors.endpoint_any(user=request.user), pk=endpoint_id)


def _back_to(endpoint: WebhookEndpoint) -> str:
    return reverse("webhook-detail", args=[endpoint.pk])


@user_page
@require_POST
def webhook_create(request: HttpRequest) -> HttpResponse:
    """Register an endpoint; its secret is on this response only."""
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            endpoint = services.endpoint_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return render_settings(request, status=201, new_webhook=endpoint)
    return render_settings(request, status=400, webhook_form=form)


@user_page
@require_POST
def reminder_channels_update(request: HttpRequest) -> HttpResponse:
    form = ReminderChannelsForm(request.POST)
    if form.is_valid():
        try:
            services.reminder_channels_update(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Reminder channels saved.")
            return redirect_after(request, reverse("settings") + "#reminder-channels")
    return render_settings(request, status=400, channels_form=form)


@user_page
@require_safe
def webhook_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """The endpoint and its latest deliveries, each with its attempts."""
    endpoint = _endpoint_or_404(request, endpoint_id)
    log = list(selectors.delivery_list(endpoint=endpoint)[:LOG_LENGTH])
    return render(request, "webhooks/endpoint.html", {"endpoint": endpoint, "deliveries": log})


@user_page
@require_POST
def webhook_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    try:
        services.endpoint_send_test(endpoint=endpoint)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "A test event is on its way: reload to see how it went.")
    return redirect_after(request, _back_to(endpoint))


@user_page
@require_POST
def webhook_redeliver(request: HttpRequest, endpoint_id: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    delivery = get_object_or_404(WebhookDelivery, endpoint=endpoint, pk=delivery_id)
    try:
        services.delivery_redeliver(delivery=delivery)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The delivery is on its way again: reload to see how it went.")
    return redirect_after(request, _back_to(endpoint))


@user_page
@require_POST
def webhook_enable(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    services.endpoint_update(endpoint=endpoint, data={"enabled": True})
    messages.success(request, "The webhook is enabled again.")
    return redirect_after(request, _back_to(endpoint))


@user_page
@require_http_methods(["GET", "POST"])
def webhook_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """Asks first (works without JavaScript); another user's endpoint is a 404."""
    endpoint = _endpoint_or_404(request, endpoint_id)
    if request.method == "GET":
        return confirm_delete(
            request,
            title=f"Delete the webhook to {endpoint.url}?",
            consequence="Nothing more is sent to it, and its delivery log is deleted.",
            cancel_url=_back_to(endpoint),
            confirm="Delete webhook",
        )
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, f"The webhook to {endpoint.url} was deleted.")
    return redirect_after(request, reverse("settings") + "#webhooks")


urlpatterns = [
    path("settings/webhooks/add/", webhook_create, name="webhook-create"),
    path("settings/webhooks/<int:endpoint_id>/", webhook_detail, name="webhook-detail"),
    path("settings/webhooks/<int:endpoint_id>/test/", webhook_test, name="webhook-test"),
    path("settings/webhooks/<int:endpoint_id>/enable/", webhook_enable, name="webhook-enable"),
    path("settings/webhooks/<int:endpoint_id>/delete/", webhook_delete, name="webhook-delete"),
    path(
        "settings/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver/",
        webhook_redeliver,
        name="webhook-redeliver",
    ),
    path("settings/reminder-channels/", reminder_channels_update, name="reminder-channels-update"),
]
