"""Account pages: sign up, log in and out, passwords, settings and API access."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings as django_settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from webhooks.forms import settings_section

from .. import selectors, services
from ..feeds import feed_url
from ..models import ApiToken, timezone_names
from .account_forms import SettingsForm, SignupForm
from .common import add_service_errors, redirect_after, safe_next, selected_or_404, user_page


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_register(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to Tideline, {user.username}!")
            return redirect(safe_next(request, reverse("home")))
    return render(
        request,
        "accounts/signup.html",
        {"form": form, "next": safe_next(request, "")},
        status=400 if form.errors else 200,
    )


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(demo_login=django_settings.DEBUG, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, f"Welcome back, {form.get_user().username}.")
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class LogoutView(auth_views.LogoutView):
    """POST only (Django refuses GET with a 405); says goodbye on the login page."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.success(request, "You are logged out.")
        return response


@user_page
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    """The profile's settings; a refused change re-renders the form (400) with its errors."""
    user = request.user
    status = 200
    if request.method == "POST":
        form = SettingsForm(request.POST)
        if form.is_valid():
            try:
                services.profile_update(user=user, data=form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Settings saved.")
                return redirect_after(request, reverse("settings"))
        status = 400
    else:
        form = _settings_form(user)
    return _settings_page(request, form, status=status)


def _settings_page(
    request: HttpRequest,
    form: SettingsForm,
    *,
    status: int = 200,
    new_feed_url: str = "",
    **webhooks: Any,
) -> HttpResponse:
    """The settings page; ``webhooks`` are the webhooks section's forms or new endpoint."""
    return render(
        request,
        "accounts/settings.html",
        {
            "form": form,
            "timezones": timezone_names(),
            "feed": selectors.feed_token_get(user=request.user),
            "new_feed_url": new_feed_url,
            **settings_section(request.user, **webhooks),
        },
        status=status,
    )


def render_settings(request: HttpRequest, *, status: int = 200, **webhooks: Any) -> HttpResponse:
    """The settings page as it stands, with the webhooks section's ``webhooks`` (a refused
    form, a just-registered endpoint whose secret is shown this once)."""
    return _settings_page(request, _settings_form(request.user), status=status, **webhooks)


def _settings_form(user) -> SettingsForm:
    profile = services.profile_get(user=user)
    return SettingsForm(
        initial={
            "email": user.email,
            "timezone": profile.timezone,
            "reminders_enabled": profile.reminders_enabled,
        }
    )


@user_page
@require_POST
def feed_create(request: HttpRequest) -> HttpResponse:
    """Create (or rotate) the calendar feed URL and show it on this response only."""
    _token, secret = services.feed_token_create(user=request.user)
    url = feed_url(request, secret)
    return _settings_page(request, _settings_form(request.user), status=201, new_feed_url=url)


@user_page
@require_POST
def feed_revoke(request: HttpRequest) -> HttpResponse:
    services.feed_token_revoke(user=request.user)
    messages.success(request, "Your calendar feed URL was revoked: calendars no longer get it.")
    return redirect_after(request, reverse("settings"))


#: The expiry choices of the web form: days, or "never".
TOKEN_EXPIRY_CHOICES = [
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
    ("never", "Never"),
]


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, e.g. “Laptop backup script”."
    )
    expires_in_days = forms.ChoiceField(label="Expires", choices=TOKEN_EXPIRY_CHOICES, initial="30")

    def clean_expires_in_days(self) -> int | None:
        value = self.cleaned_data["expires_in_days"]
        return None if value == "never" else int(value)


def _api_access_page(
    request: HttpRequest,
    form: ApiTokenForm,
    *,
    new_token: ApiToken | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "accounts/api_access.html",
        {
            "tokens": selectors.api_token_list(user=request.user),
            "form": form,
            "new_token": new_token,
            "now": timezone.now(),
            "api_url": request.build_absolute_uri(reverse("api:api-root")),
        },
        status=status,
    )


@user_page
@require_safe
def api_access(request: HttpRequest) -> HttpResponse:
    """The user's API tokens and a form to create one."""
    return _api_access_page(request, ApiTokenForm())


@user_page
@require_POST
def api_token_create(request: HttpRequest) -> HttpResponse:
    """Create a token and show its secret on this response only: it is stored nowhere (not
    even in the session), and the page is never cached."""
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            token, secret = services.api_token_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            token.secret = secret
            return _api_access_page(request, ApiTokenForm(), new_token=token, status=201)
    return _api_access_page(request, form, status=400)


@user_page
@require_http_methods(["GET", "POST"])
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Asks first (works without JavaScript); another user's token is a 404."""
    token = selected_or_404(selectors.api_token_get, user=request.user, token_id=token_id)
    if request.method == "GET":
        return render(request, "accounts/api_token_confirm.html", {"token": token})
    services.api_token_revoke(token=token)
    messages.success(request, f"The token “{token.name}” was revoked.")
    return redirect_after(request, reverse("api-access"))


urlpatterns = [
    path("accounts/signup/", signup, name="signup"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(template_name="accounts/password_change.html"),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/password_change_done.html"
        ),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        auth_views.PasswordResetView.as_view(
            template_name="accounts/password_reset_form.html",
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/password_reset_confirm.html"
        ),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("settings/", settings_page, name="settings"),
    path("settings/feed/create/", feed_create, name="feed-create"),
    path("settings/feed/revoke/", feed_revoke, name="feed-revoke"),
    path("settings/api/", api_access, name="api-access"),
    path("settings/api/create/", api_token_create, name="api-token-create"),
    path("settings/api/<int:token_id>/revoke/", api_token_revoke, name="api-token-revoke"),
]
