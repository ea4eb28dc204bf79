"""API throttles: anonymous callers per address, users per account, and the token and
registration endpoints per address at a lower rate; answered with a JSON 429 and Retry-After."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from tasks.api.throttling import client_ip

WRONG = {"username": "alice", "password": "not her password"}
SCHEMA = "/api/schema/"
JSON_SCHEMA = {"HTTP_ACCEPT": "application/vnd.oai.openapi+json"}


def wrong_login(n: int) -> dict[str, str]:
    """A failed login for a different username each time (no lockout, see test_lockout.py)."""
    return {"username": f"nobody{n}", "password": "wrong"}


@pytest.fixture
def rates(monkeypatch):
    """``rates(anon="3/min")``: lower the throttle rates for one test."""

    def set_rates(**scopes: str) -> None:
        for scope, rate in scopes.items():
            monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, rate)

    return set_rates


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "json" in response["Content-Type"]
    assert "throttled" in json.loads(response.content)["detail"]


def test_the_rates_come_from_the_settings():
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] == {
        "anon": "60/min",
        "user": "600/min",
        "auth": "10/min",
        "webhooks": "30/min",
    }


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/auth/register/"])
def test_the_eleventh_auth_attempt_in_a_minute_is_a_429(alice, anon_api, path):
    for n in range(10):
        assert anon_api.post(path, wrong_login(n)).status_code == 400

    assert_throttled(anon_api.post(path, wrong_login(10)))


def test_token_and_registration_share_one_budget_per_address(alice, anon_api):
    for n in range(5):
        anon_api.post("/api/auth/token/", wrong_login(n))
        anon_api.post("/api/auth/register/", {})

    assert_throttled(anon_api.post("/api/auth/token/", wrong_login(5)))
    other_address = anon_api.post("/api/auth/token/", WRONG, REMOTE_ADDR="198.51.100.7")
    assert other_address.status_code == 400


def test_a_forged_forwarded_for_does_not_reset_the_budget(alice, anon_api):
    for n in range(10):
        anon_api.post("/api/auth/token/", wrong_login(n), HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")

    forged = anon_api.post("/api/auth/token/", WRONG, HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert_throttled(forged)


def test_anonymous_requests_are_throttled_per_address(anon_api, rates):
    rates(anon="3/min")
    for _ in range(3):
        assert anon_api.get(SCHEMA, **JSON_SCHEMA).status_code == 200

    assert_throttled(anon_api.get(SCHEMA, **JSON_SCHEMA))
    assert anon_api.get(SCHEMA, REMOTE_ADDR="198.51.100.7", **JSON_SCHEMA).status_code == 200


def test_users_are_throttled_per_account(api, bob_api, rates):
    rates(user="3/min")
    for _ in range(3):
        assert api.get("/api/tasks/").status_code == 200

    assert_throttled(api.get("/api/tasks/"))
    assert bob_api.get("/api/tasks/").status_code == 200


@pytest.fixture
def clock(monkeypatch):
    """The throttles' clock, moved by hand: ``clock.now += 20``."""

    class Clock:
        now = 1_800_000_000.0

    monkeypatch.setattr(SimpleRateThrottle, "timer", staticmethod(lambda: Clock.now))
    return Clock


def test_after_a_burst_one_request_comes_back_every_period_over_the_rate(api, rates, clock):
    rates(user="3/min")
    assert [api.get("/api/tasks/").status_code for _ in range(3)] == [200, 200, 200]

    refused = api.get("/api/tasks/")
    assert_throttled(refused)
    assert refused["Retry-After"] == "20"  # a minute over 3: the next request, not the budget

    clock.now += 19
    assert_throttled(api.get("/api/tasks/"))
    clock.now += 1
    assert api.get("/api/tasks/").status_code == 200
    assert_throttled(api.get("/api/tasks/"))


def test_a_caller_that_keeps_asking_gets_the_rate(api, rates, clock):
    rates(user="6/min")
    allowed_at = []
    for _ in range(120):  # a request every five seconds for ten minutes
        if api.get("/api/tasks/").status_code == 200:
            allowed_at.append(clock.now)
        clock.now += 5

    start = allowed_at[0]
    per_minute = [
        sum(start + 60 * m <= t < start + 60 * (m + 1) for t in allowed_at) for m in range(10)
    ]
    assert per_minute[1:] == [6] * 9  # one every ten seconds
    assert per_minute[0] == 6 + 5  # the burst, and what refilled while it was spent


def test_a_quiet_caller_gets_its_whole_budget_back(api, rates, clock):
    rates(user="3/min")
    for _ in range(3):
        api.get("/api/tasks/")
    assert_throttled(api.get("/api/tasks/"))

    clock.now += 60

    assert [api.get("/api/tasks/").status_code for _ in range(4)] == [200, 200, 200, 429]


@pytest.mark.parametrize("rate, burst", [("9/min", 9), ("11/min", 11), ("7/hour", 7), ("5/sec", 5)])
def test_a_burst_of_exactly_the_rate_gets_through(api, rates, clock, rate, burst):
    rates(user=rate)

    codes = [api.get("/api/tasks/").status_code for _ in range(burst + 1)]

    assert codes == [200] * burst + [429]


def test_a_rate_of_zero_refuses_every_request_for_the_period(api, rates):
    rates(user="0/min")

    refused = api.get("/api/tasks/")

    assert_throttled(refused)
    assert refused["Retry-After"] == "60"


@pytest.mark.parametrize("rate", ["10/min", "100000/min"])
def test_a_caller_costs_one_cached_number_whatever_the_rate(api, alice, rates, rate):
    rates(user=rate)
    for _ in range(5):
        api.get("/api/tasks/")

    assert isinstance(cache.get(f"throttle_gcra_user_{alice.pk}"), float)


def test_under_the_rates_nothing_is_throttled(api, anon_api, rates):
    rates(anon="5/min", user="5/min")
    for _ in range(5):
        assert api.get("/api/tasks/").status_code == 200
        assert anon_api.get(SCHEMA, **JSON_SCHEMA).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/dapr/subscribe"])
def test_the_sidecar_and_kubelet_routes_are_never_throttled(anon_api, rates, settings, path):
    settings.DAPR_ENABLED = True
    rates(anon="2/min", user="2/min")

    assert [anon_api.get(path).status_code for _ in range(5)] == [200] * 5


def test_behind_the_proxy_the_address_is_the_one_the_proxy_appended(rf, settings):
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9", REMOTE_ADDR="10.0.0.2")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    assert client_ip(request) == "203.0.113.9"


def test_without_the_proxy_forwarded_for_is_ignored(rf):
    request = rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.9", REMOTE_ADDR="10.0.0.2")

    assert client_ip(request) == "10.0.0.2"
