"""``delivery_record_past``: a past reminder kept as history (the demo's), sending nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from events.relay import relay_pending
from notifications.models import DeliveryState
from notifications.services import delivery_record_past, reminders_sweep
from tests.factories import make_task
from tests.notifications.helpers import deliveries, fresh

pytestmark = pytest.mark.django_db


def past_reminder(user, minutes_ago: int = 300):
    now = timezone.now().replace(microsecond=0)
    return make_task(
        user,
        title="Call the plumber",
        due_date=now - dt.timedelta(minutes=minutes_ago - 30),
        remind_at=now - dt.timedelta(minutes=minutes_ago),
    )


def test_a_reminder_recorded_as_sent_shows_sent_and_mails_nobody(alice, smtp):
    task = past_reminder(alice)

    assert delivery_record_past(task, state=DeliveryState.SENT) is True
    relay_pending()  # the consumers see the task afterwards
    reminders_sweep()

    [delivery] = deliveries(task)
    assert (delivery.state, delivery.sent_at) == (DeliveryState.SENT, task.remind_at)
    assert fresh(task).reminder_sent is True
    assert smtp.messages == []


def test_a_reminder_recorded_as_missed_stays_missed(alice, smtp):
    task = past_reminder(alice, minutes_ago=40)  # recent: the sweep would have sent it

    delivery_record_past(task, state=DeliveryState.MISSED)
    relay_pending()
    reminders_sweep()

    [delivery] = deliveries(task)
    assert delivery.state == DeliveryState.MISSED
    assert fresh(task).reminder_sent is False
    assert smtp.messages == []


def test_recording_a_past_reminder_twice_changes_nothing_the_second_time(alice):
    task = past_reminder(alice)
    delivery_record_past(task, state=DeliveryState.SENT)

    assert delivery_record_past(task, state=DeliveryState.MISSED) is False
    assert [d.state for d in deliveries(task)] == [DeliveryState.SENT]


def test_a_past_reminder_is_only_sent_or_missed(alice):
    with pytest.raises(ValueError, match="sent or missed"):
        delivery_record_past(past_reminder(alice), state=DeliveryState.FAILED)
