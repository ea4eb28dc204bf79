"""The webhook consumer: an event's deliveries are recorded, then POSTed after commit.

Which events reach it, and under which consumer names, is ``events.routing.TABLE``.
"""

from __future__ import annotations

from events.cloudevents import CloudEvent

from . import services


def deliver_webhooks(event: CloudEvent) -> None:
    """Record one delivery per endpoint that wants the event (a transaction of its own),
    then send each one this process wins the claim of, outside any transaction.

    A duplicate event records nothing new and finds its deliveries claimed or sent; a
    failed POST is the delivery's to retry (the sweep), not the event's.
    """
    for delivery_id in services.deliveries_record(event):
        services.delivery_attempt(delivery_id)
