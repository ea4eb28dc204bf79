"""Outbox health at a glance: backlog, oldest pending age, failures, what blocks publishing,
and the consumers' dead letters."""

import json

from django.core.management.base import BaseCommand
from django.db.models import Count, Min
from django.utils import timezone

from events.models import ConsumerFailure, DeadLetter, FailureState, OutboxEvent, OutboxState
from events.relay import configuration_error


def outbox_status() -> dict:
    now = timezone.now()
    counts = dict(OutboxEvent.objects.values_list("state").annotate(n=Count("seq")).order_by())
    oldest = OutboxEvent.objects.filter(state=OutboxState.PENDING).aggregate(
        oldest=Min("created_at")
    )["oldest"]
    retrying = OutboxEvent.objects.filter(state=OutboxState.PENDING, attempts__gt=0).count()
    consumers = dict(
        ConsumerFailure.objects.values_list("state").annotate(n=Count("id")).order_by()
    )
    return {
        "pending": counts.get(OutboxState.PENDING, 0),
        "retrying": retrying,
        "failed": counts.get(OutboxState.FAILED, 0),
        "delivered_retained": counts.get(OutboxState.DELIVERED, 0),
        "consumers_retrying": consumers.get(FailureState.RETRYING, 0),
        "dead_letters": consumers.get(FailureState.DEAD, 0),
        "oldest_pending_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else 0,
        "by_topic": {
            topic: n
            for topic, n in OutboxEvent.objects.filter(state=OutboxState.PENDING)
            .values_list("topic")
            .annotate(n=Count("seq"))
            .order_by()
        },
    }


class Command(BaseCommand):
    help = (
        "Show the outbox backlog, the oldest pending event's age, the latest retry error,"
        " parked failures, whether the sidecar's configuration blocks publishing, and the"
        " consumers' dead letters (the newest first; replay them with replay_dead_letters)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args, **options):
        status = outbox_status()
        if options.get("json"):
            self.stdout.write(json.dumps(status))
            return
        for key, value in status.items():
            self.stdout.write(f"{key}: {value}")
        blocked = configuration_error()
        if blocked:
            self.stdout.write(f"publishing blocked by the sidecar's configuration: {blocked}")
        retrying = (
            OutboxEvent.objects.filter(state=OutboxState.PENDING, attempts__gt=0)
            .order_by("-last_attempt_at")
            .first()
        )
        if retrying is not None:
            self.stdout.write(f"latest retry {retrying.id} {retrying.topic}: {retrying.last_error}")
        failures = OutboxEvent.objects.filter(state=OutboxState.FAILED).order_by("-seq")[:10]
        for row in failures:
            self.stdout.write(
                f"  failed {row.id} {row.event_type} {row.topic}: {row.last_error[:120]}"
            )
        dead = DeadLetter.objects.filter(state=FailureState.DEAD).order_by("-dead_at", "-id")
        for letter in dead[:10]:
            self.stdout.write(
                f"  dead letter #{letter.pk} {letter.consumer} {letter.event_type}"
                f" {letter.event_id} {letter.topic} key={letter.partition_key}"
                f" attempts={letter.attempts}: {letter.last_error[:120]}"
            )
