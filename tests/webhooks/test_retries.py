"""Retries with backoff on 5xx, 429 (honouring Retry-After), timeouts and refused
connections; a 4xx is permanent; an endpoint failing delivery after delivery is disabled
and its owner told by e-mail."""

from __future__ import annotations

import datetime as dt

from django.core import mail
from django.utils import timezone

from events.relay import relay_pending
from events.routing import TABLE
from tests.webhooks.helpers import deliveries, endpoint, later, register
from webhooks import services
from webhooks.models import DeliveryState


def one_change(api, title: str = "Something changed") -> None:
    api.post("/api/tasks/", {"title": title}, format="json")
    relay_pending()


def test_a_500_is_retried_with_backoff_then_delivered(api, receiver):
    hook = register(api, receiver)
    receiver.answer(500, body=b"oops")
    before = timezone.now()
    one_change(api)

    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_status_code == 500
    wait = delivery.next_attempt_at - before
    assert dt.timedelta(seconds=23) < wait < dt.timedelta(seconds=32)  # 30 s, with jitter

    assert services.deliveries_sweep() == 0  # not due yet
    assert services.deliveries_sweep(now=later(40)) == 1

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.verified
    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.SUCCEEDED
    assert delivery.attempts == 2


def test_a_429_waits_as_long_as_retry_after_says(api, receiver):
    hook = register(api, receiver)
    receiver.answer(429, {"Retry-After": "120"})
    before = timezone.now()
    one_change(api)

    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.PENDING
    wait = delivery.next_attempt_at - before
    assert dt.timedelta(seconds=119) < wait < dt.timedelta(seconds=125)
    assert services.deliveries_sweep(now=later(60)) == 0  # backoff alone would go at 30 s
    assert services.deliveries_sweep(now=later(125)) == 1
    assert deliveries(hook["id"])[0].state == DeliveryState.SUCCEEDED


def test_a_410_is_permanent(api, receiver):
    hook = register(api, receiver)
    receiver.answer(410, body=b"gone")
    one_change(api)

    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.FAILED
    assert delivery.attempts == 1
    assert services.deliveries_sweep(now=later(7200)) == 0
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_retried_until_the_attempts_are_spent(api, receiver):
    hook = register(api, receiver)
    receiver.stop()  # nothing listens on the port any more
    one_change(api)

    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.PENDING
    assert "connection failed" in delivery.last_error
    services.deliveries_sweep(now=later(3600))
    services.deliveries_sweep(now=later(7200))  # the third of WEBHOOK_MAX_ATTEMPTS=3

    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.FAILED
    assert delivery.attempts == 3
    assert [a.error[:17] for a in delivery.attempt_log.all()] == ["connection failed"] * 3
    assert endpoint(hook["id"]).consecutive_failures == 1


def test_a_receiver_that_answers_too_slowly_times_out_and_is_retried(api, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    hook = register(api, receiver)
    receiver.answer(200, delay=1.5)
    one_change(api)

    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_error.startswith("timed out")
    [attempt] = delivery.attempt_log.all()
    assert 400 <= attempt.duration_ms < 1500


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline(api, receiver, settings):
    """Each byte comes within the read timeout, the whole answer would take 10 s: the
    attempt ends WEBHOOK_TIMEOUT_SECONDS after connecting."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    hook = register(api, receiver)
    receiver.answer(200, trickle=0.1)
    one_change(api)

    [delivery] = deliveries(hook["id"])
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_error == "timed out: no whole answer within 0.5 s of connecting"
    [attempt] = delivery.attempt_log.all()
    assert 500 <= attempt.duration_ms < 2000


def test_an_endpoint_failing_n_deliveries_in_a_row_is_disabled_and_its_owner_emailed(
    api, receiver, django_capture_on_commit_callbacks
):
    hook = register(api, receiver)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for n in range(3):  # WEBHOOK_DISABLE_AFTER_FAILURES = 3
            receiver.answer(404)
            one_change(api, f"Change {n}")
            assert mail.outbox == []  # the e-mail waits for the commit

    disabled = endpoint(hook["id"])
    assert disabled.enabled is False
    assert disabled.disabled_at is not None
    assert "3 deliveries in a row failed" in disabled.disabled_reason
    assert len(callbacks) >= 1
    [message] = mail.outbox
    assert message.to == ["alice@example.com"]
    assert receiver.url() in message.subject
    assert "enable the webhook again" in message.body

    one_change(api, "Nobody hears this")
    assert len(receiver.requests) == 3
    shown = api.get(f"/api/webhooks/{hook['id']}/").json()
    assert shown["enabled"] is False
    assert shown["consecutive_failures"] == 3

    api.patch(f"/api/webhooks/{hook['id']}/", {"enabled": True}, format="json")
    one_change(api, "Heard again")
    assert receiver.events[-1]["data"]["task_data"]["title"] == "Heard again"
    assert endpoint(hook["id"]).consecutive_failures == 0
    assert len(mail.outbox) == 1


def test_a_success_between_failures_starts_the_count_again(api, receiver):
    hook = register(api, receiver)
    for status in (404, 404, 204, 404, 404):
        receiver.answer(status)
        one_change(api)

    assert endpoint(hook["id"]).enabled is True
    assert endpoint(hook["id"]).consecutive_failures == 2
    assert mail.outbox == []


def test_only_processes_serving_the_webhook_role_send(api, receiver, settings):
    hook = register(api, receiver)
    receiver.answer(503)
    one_change(api)
    assert len(receiver.requests) == 1

    settings.EVENT_CONSUMERS = ["recurrence"]  # a recurrence pod: no way out to the internet
    assert services.deliveries_sweep(now=later(3600)) == 0
    settings.EVENT_CONSUMERS = [services.WEBHOOK_ROLE]
    assert services.deliveries_sweep(now=later(3600)) == 1

    assert len(receiver.requests) == 2
    assert deliveries(hook["id"])[0].state == DeliveryState.SUCCEEDED
    roles = {
        consumer.role
        for consumers in TABLE.consumers.values()
        for consumer in consumers
        if consumer.name.startswith("webhooks.")
    }
    assert roles == {services.WEBHOOK_ROLE}
