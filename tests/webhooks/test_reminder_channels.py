"""Reminders by e-mail, webhook or both, and an ntfy topic as a push channel: the reminder
consumers honour the user's choice, once per reminder and channel."""

from __future__ import annotations

import datetime as dt

from django.core import mail

from events.cloudevents import build_envelope
from events.dispatch import deliver
from events.jobs_client import DatabaseJobs
from events.models import OutboxEvent
from events.relay import relay_pending
from notifications.models import DeliveryState as ReminderState
from tasks.models import Task
from tests.notifications.helpers import delivery, iso, soon
from tests.webhooks.helpers import register
from webhooks.models import WebhookDelivery

SECOND = dt.timedelta(seconds=1)


def remind(api, title: str = "Feed the cat") -> int:
    """A task whose reminder comes due now; every event delivered."""
    remind_at = soon(3)
    task = api.post(
        "/api/tasks/",
        {"title": title, "due_date": iso(soon(hours=1)), "remind_at": iso(remind_at)},
        format="json",
    ).json()
    relay_pending()
    assert DatabaseJobs().fire_due(now=remind_at + SECOND) == 1
    relay_pending()
    return task["id"]


def choose(api, channel: str, ntfy_url: str = "") -> dict:
    response = api.put(
        "/api/webhooks/reminder-channels/",
        {"channel": channel, "ntfy_url": ntfy_url},
        format="json",
    )
    assert response.status_code == 200, response.json()
    return response.json()


def reminder_events(receiver) -> list[dict]:
    return [e for e in receiver.events if e["type"] == "reminder.due"]


def test_by_default_a_reminder_goes_by_email_and_to_webhooks_that_want_it(api, receiver):
    assert api.get("/api/webhooks/reminder-channels/").json() == {
        "channel": "both",
        "ntfy_url": "",
    }
    register(api, receiver, event_types=["reminder.due"])
    remind(api)

    [event] = reminder_events(receiver)
    assert event["data"]["title"] == "Feed the cat"
    assert [m.subject for m in mail.outbox] == [mail.outbox[0].subject]
    assert mail.outbox[0].subject.startswith("Reminder: Feed the cat")


def test_webhook_only_sends_no_email(api, receiver, alice):
    register(api, receiver, event_types=["reminder.due"])
    choose(api, "webhook")
    task_id = remind(api)

    assert len(reminder_events(receiver)) == 1
    assert mail.outbox == []
    sent = delivery(Task.objects.get(pk=task_id))
    assert sent.state == ReminderState.SKIPPED
    assert sent.detail == "the user wants reminders by webhook only"


def test_email_only_keeps_reminders_from_the_webhooks(api, receiver):
    register(api, receiver, event_types=["reminder.due", "task.created"])
    choose(api, "email")
    remind(api)

    assert [e["type"] for e in receiver.events] == ["task.created"]
    assert len(mail.outbox) == 1


def test_an_ntfy_topic_gets_the_reminder_as_plain_text_once(api, receiver, alice):
    choose(api, "email", ntfy_url=receiver.url("/tideline-alice"))
    assert api.get("/api/webhooks/reminder-channels/").json()["ntfy_url"] == receiver.url(
        "/tideline-alice"
    )
    remind(api, "Water the tomatoes")
    due = OutboxEvent.objects.get(topic="task-reminders")
    deliver("task-reminders", build_envelope(due))  # the same reminder.due again

    [push] = receiver.requests
    assert push.path == "/tideline-alice"
    assert push.body.decode().startswith("Reminder: Water the tomatoes (due ")
    assert push.headers["content-type"].startswith("text/plain")
    assert push.headers["title"] == "Tideline reminder"
    assert "webhook-signature" not in push.headers
    assert WebhookDelivery.objects.filter(event_id=str(due.id)).count() == 1
    assert len(mail.outbox) == 1  # e-mail as chosen, besides the push


def test_an_ntfy_topic_obeys_the_same_address_rules(api, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    response = api.put(
        "/api/webhooks/reminder-channels/",
        {"channel": "both", "ntfy_url": "http://127.0.0.1/topic"},
        format="json",
    )
    assert response.status_code == 400
    assert "loopback" in response.json()["ntfy_url"][0]


def test_removing_the_ntfy_topic_stops_the_pushes(api, receiver):
    choose(api, "both", ntfy_url=receiver.url("/topic"))
    choose(api, "both", ntfy_url="")
    remind(api)
    assert receiver.requests == []


def test_webhook_only_needs_a_webhook_that_wants_reminders(api, receiver):
    register(api, receiver, event_types=["task.created"])
    response = api.put("/api/webhooks/reminder-channels/", {"channel": "webhook"}, format="json")
    assert response.status_code == 400
    assert "None of your enabled webhooks wants reminder.due" in response.json()["channel"][0]
    assert api.get("/api/webhooks/reminder-channels/").json()["channel"] == "both"
