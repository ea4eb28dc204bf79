"""Account pages: sign up, log in and out, passwords, settings and API access."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from .. import services
from ..models import timezone_names
from ..selectors import api_token_get
from .account_forms import SettingsForm, SignupForm
from .common import add_service_errors, redirect_after, safe_next, user_page


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
        profile = services.profile_get(user=user)
        form = SettingsForm(
            initial={
                "email": user.email,
                "timezone": profile.timezone,
                "reminders_enabled": profile.reminders_enabled,
            }
        )
    return render(
        request,
        "accounts/settings.html",
        {"form": form, "timezones": timezone_names()},
        status=status,
    )


@user_page
@require_safe
def api_access(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/api_access.html",
        {
            "token": api_token_get(user=request.user),
            "api_url": request.build_absolute_uri(reverse("api:api-root")),
        },
    )


@user_page
@require_POST
def api_token_create(request: HttpRequest) -> HttpResponse:
    services.api_token_create(user=request.user)
    messages.success(request, "Your API token is ready.")
    return redirect_after(request, reverse("api-access"))


#: What the confirmation page of each token action says.
TOKEN_ACTIONS = {
    "regenerate": {
        "title": "Regenerate your API token?",
        "warning": "A new token replaces the current one, which stops working at once: "
        "scripts and apps that use it must be given the new one.",
        "button": "Regenerate token",
        "url_name": "api-token-regenerate",
    },
    "revoke": {
        "title": "Revoke your API token?",
        "warning": "The token stops working at once. You can create a new one later.",
        "button": "Revoke token",
        "url_name": "api-token-revoke",
    },
}


def _confirm_token_action(request: HttpRequest, action: str) -> HttpResponse:
    """The page that asks before a token is replaced or revoked (works without JavaScript)."""
    if api_token_get(user=request.user) is None:
        messages.info(request, "You have no API token yet.")
        return redirect("api-access")
    return render(request, "accounts/api_token_confirm.html", TOKEN_ACTIONS[action])


@user_page
@require_http_methods(["GET", "POST"])
def api_token_regenerate(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _confirm_token_action(request, "regenerate")
    services.api_token_create(user=request.user, replace=True)
    messages.success(request, "A new API token was created; the old one no longer works.")
    return redirect_after(request, reverse("api-access"))


@user_page
@require_http_methods(["GET", "POST"])
def api_token_revoke(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _confirm_token_action(request, "revoke")
    services.api_token_revoke(user=request.user)
    messages.success(request, "Your API token was revoked.")
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
    path("settings/api/", api_access, name="api-access"),
    path("settings/api/create/", api_token_create, name="api-token-create"),
    path("settings/api/regenerate/", api_token_regenerate, name="api-token-regenerate"),
    path("settings/api/revoke/", api_token_revoke, name="api-token-revoke"),
]
