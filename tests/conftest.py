import os
import socket

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from tasks import services
from tasks.models import ApiToken
from tests import factories
from tests.factories import UserFactory

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a local service is unreachable, or fail under REQUIRE_SERVICES=1."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError as exc:
        message = f"{name} is not reachable on {host}:{port}: {exc}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with fresh API throttle counts (they live in the cache)."""
    cache.clear()


@pytest.fixture(autouse=True)
def _stop_live_listener():
    """A test that opened a live stream on PostgreSQL started this process's LISTEN thread:
    stop it after the test, so its connection never holds the test database open."""
    yield
    from events.live import hub

    hub.stop()


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", email="alice@example.com")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob", email="bob@example.com")


def _client_for(user) -> APIClient:
    """A client with a new API token of ``user``'s, marked as just used: its requests read
    the token without writing its last use, as all but one a minute do."""
    client = APIClient()
    token, secret = services.api_token_create(user=user, name="Test client")
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


@pytest.fixture
def api(alice) -> APIClient:
    """An API client authenticated as alice by token."""
    return _client_for(alice)


@pytest.fixture
def bob_api(bob) -> APIClient:
    return _client_for(bob)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture(name="make_task")
def make_task_fixture():
    """``make_task(user, **fields)``: a task created through the service."""
    return factories.make_task


@pytest.fixture(name="make_category")
def make_category_fixture():
    """``make_category(user, name="Work", color=...)`` through the service."""
    return factories.make_category


@pytest.fixture(name="make_tag")
def make_tag_fixture():
    """``make_tag(user, name="home")`` through the service."""
    return factories.make_tag


def pytest_configure(config):
    # An unordered paginated list gives clients duplicate or missing rows between pages.
    config.addinivalue_line(
        "filterwarnings", "error::django.core.paginator.UnorderedObjectListWarning"
    )
