"""Production's security settings: ``manage.py check --deploy`` with the ConfigMap's environment
reports only what is off on purpose (HSTS, until the operator enables it), and the HTTPS
redirect never touches the routes daprd and the kubelet call over plain HTTP."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory
from django.urls import reverse

from todo_project.hosts import INTERNAL_ROUTES

ROOT = Path(django_settings.BASE_DIR)
CONFIGMAP = ROOT / "k8s" / "base" / "configmap.yaml"
PUBLIC_HOST = "tasks.example.com"
HSTS_ON = {
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}
# The arguments of each internal route (events/urls.py).
ROUTE_ARGUMENTS = {"dapr-topic": {"topic": "task-events"}, "dapr-job": {"name": "check-due-tasks"}}


def deploy_warnings(tmp_path: Path, **overrides: str) -> list[str]:
    """The check ids ``manage.py check --deploy`` reports in a fresh process with the base
    ConfigMap's environment, a production-grade ``SECRET_KEY`` and ``overrides``."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "todo_project.settings",
        **yaml.safe_load(CONFIGMAP.read_text())["data"],
        # 50+ characters. Not get_random_secret_key(): a value starting with "$" is read by
        # django-environ as a reference to another variable (so the key would go missing).
        "SECRET_KEY": secrets.token_urlsafe(50),
        "APP_API_TOKEN": secrets.token_urlsafe(32),  # from a Secret, as the pods get it
        "TIDELINE_VAR_DIR": str(tmp_path / "var"),
        **overrides,
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return sorted(re.findall(r"\(([\w.]+)\)", done.stdout + done.stderr))


def test_with_the_configmaps_environment_only_hsts_is_reported_as_off(tmp_path):
    # Deliberate: HSTS is sticky, so production turns it on itself (README, "Production").
    assert deploy_warnings(tmp_path) == ["security.W004"]


def test_with_hsts_enabled_check_deploy_reports_nothing(tmp_path):
    assert deploy_warnings(tmp_path, **HSTS_ON) == []


@pytest.mark.parametrize(
    ("broken", "reported"),
    [
        # Not behind the TLS proxy: cookies may travel in clear.
        ({"TIDELINE_BEHIND_TLS_PROXY": "false"}, ["security.W012", "security.W016"]),
        ({"SECURE_SSL_REDIRECT": "false"}, ["security.W008"]),
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false"}, ["security.W005"]),
    ],
    ids=["no tls proxy", "no redirect", "hsts without subdomains"],
)
def test_a_weaker_environment_is_reported(tmp_path, broken, reported):
    assert deploy_warnings(tmp_path, **{**HSTS_ON, **broken}) == reported


def test_dapr_without_an_app_token_fails_check_deploy(tmp_path):
    with pytest.raises(AssertionError, match=r"tideline\.E012"):
        deploy_warnings(tmp_path, **HSTS_ON, APP_API_TOKEN="")


def redirect_of(path: str, **headers: str) -> str | None:
    """Where the security middleware sends a plain-HTTP GET of ``path``; None: not redirected."""
    middleware = SecurityMiddleware(lambda request: HttpResponse())  # reads the settings now
    request = RequestFactory().get(path, headers={"host": PUBLIC_HOST, **headers})
    response = middleware.process_request(request)
    return None if response is None else response["Location"]


def internal_paths() -> list[str]:
    return sorted(reverse(name, kwargs=ROUTE_ARGUMENTS.get(name)) for name in INTERNAL_ROUTES)


@pytest.fixture
def https_only(settings):
    settings.ALLOWED_HOSTS = [PUBLIC_HOST]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


def test_the_routes_daprd_and_the_kubelet_call_are_never_redirected(https_only):
    assert internal_paths() == [
        "/dapr/subscribe",
        "/events/task-events",
        "/healthz",
        "/job/check-due-tasks",
        "/readyz",
    ]
    assert {path: redirect_of(path) for path in internal_paths()} == dict.fromkeys(internal_paths())


@pytest.mark.parametrize(
    "path", ["/", "/api/tasks/", "/admin/", "/healthz/more", "/readyzz", "/jobs/x", "/dapr/x"]
)
def test_every_other_route_is_redirected_to_https(https_only, path):
    assert redirect_of(path) == f"https://{PUBLIC_HOST}{path}"
    assert redirect_of(path, x_forwarded_proto="https") is None  # came over HTTPS already


def test_without_the_exemptions_the_internal_routes_would_be_redirected(https_only):
    https_only.SECURE_REDIRECT_EXEMPT = []

    assert all(redirect_of(path) for path in internal_paths())
