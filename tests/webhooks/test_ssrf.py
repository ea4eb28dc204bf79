"""Webhooks never reach private, loopback, link-local or metadata addresses unless the
operator's allow-list admits them; checked at registration (a 400 naming ``url``) and at
every attempt, on the address actually connected to; redirects are never followed."""

from __future__ import annotations

import socket

import pytest

from events.relay import relay_pending
from tests.webhooks.helpers import deliveries, register
from webhooks.models import DeliveryState


@pytest.fixture
def no_allow_list(webhooks_world):
    webhooks_world.WEBHOOK_ALLOWED_NETWORKS = []
    return webhooks_world


def refused(api, url: str) -> str:
    response = api.post(
        "/api/webhooks/", {"url": url, "event_types": ["task.created"]}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert list(response.json()) == ["url"]
    return response.json()["url"][0]


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("192.168.0.10", "is a private address"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("[::1]", "::1 is a loopback address"),
        ("[::ffff:127.0.0.1]", "127.0.0.1 is a loopback address"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("[fe80::1]", "is a link-local address"),
        ("224.0.0.1", "is a multicast address"),
        ("0.0.0.0", "is a"),
        ("localhost", "is a loopback address"),  # a DNS name that resolves to loopback
    ],
)
def test_registering_an_internal_address_is_refused(api, no_allow_list, receiver, host, why):
    message = refused(api, f"http://{host}:{receiver.port}/hook")
    assert why in message
    assert receiver.requests == []


def test_only_https_outside_debug(api, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    assert refused(api, "http://hooks.example.com/in") == "Only https:// URLs are allowed."


def test_a_url_with_credentials_or_no_host_is_refused(api):
    assert "user name or password" in refused(api, "https://me:pw@hooks.example.com/in")
    response = api.post("/api/webhooks/", {"url": "ftp://x", "event_types": []}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"url", "event_types"}


def test_the_allow_list_admits_the_loopback_receiver(api, receiver, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    register(api, receiver)
    api.post("/api/tasks/", {"title": "Reachable"}, format="json")
    relay_pending()
    assert len(receiver.events) == 1


def test_the_allow_list_never_admits_the_metadata_address(api, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["169.254.0.0/16"]
    assert "cloud metadata" in refused(api, "http://169.254.169.254/latest/meta-data/")


def test_the_address_is_checked_again_at_delivery(api, receiver, settings):
    hook = register(api, receiver)
    settings.WEBHOOK_ALLOWED_NETWORKS = []  # the operator took loopback off the list
    api.post("/api/tasks/", {"title": "Not any more"}, format="json")
    relay_pending()

    assert receiver.requests == []
    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.FAILED  # permanent: not retried
    assert "loopback" in delivery.last_error


def test_a_redirect_is_a_failed_attempt_and_never_followed(api, receiver, other_receiver):
    hook = register(api, receiver)
    receiver.answer(302, {"Location": other_receiver.url("/stolen")})
    api.post("/api/tasks/", {"title": "Go elsewhere"}, format="json")
    relay_pending()

    assert len(receiver.requests) == 1
    assert other_receiver.requests == []
    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.FAILED
    assert delivery.last_status_code == 302
    assert "redirects are not followed" in delivery.last_error


def test_the_connection_goes_to_the_address_checked_not_a_later_dns_answer(
    api, receiver, monkeypatch
):
    """DNS rebinding: the name resolves to the allowed loopback receiver when checked and
    to an unroutable address afterwards; the POST still goes to the address checked, with
    the name in the Host header."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.1"])  # registration, then the delivery's check

    def rebinding(host, *args, **kwargs):
        if host == "hooks.rebind.test":
            address = next(answers, "203.0.113.7")  # TEST-NET-3: nothing answers there
            return real(address, *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)  # a stand-in for the DNS
    response = api.post(
        "/api/webhooks/",
        {"url": receiver.url(host="hooks.rebind.test"), "event_types": ["task.created"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    receiver.secret = response.json()["secret"]
    api.post("/api/tasks/", {"title": "Pinned"}, format="json")
    relay_pending()

    [request] = receiver.requests
    assert request.verified
    assert request.headers["host"] == f"hooks.rebind.test:{receiver.port}"
