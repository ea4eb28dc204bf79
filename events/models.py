"""The transactional outbox, consumer idempotency records, the embedded state store and the
live-updates log that open pages follow."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (parked)"


class OutboxEvent(models.Model):
    """One event for one topic, written in the same transaction as the change it records.

    ``seq`` orders events; ``id`` is the CloudEvent id, stable across re-publishes.
    """

    seq = models.BigAutoField(primary_key=True)
    id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=64)
    topic = models.CharField(max_length=128)
    partition_key = models.CharField(max_length=64, help_text="Events of one key keep their order.")
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    state = models.CharField(
        max_length=10, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=64, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_by = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="DAPR_APP_ID of the process that tried it last (blank: embedded).",
    )
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "seq"],
                name="outbox_pending_due",
                condition=Q(state="pending"),
            ),
            models.Index(
                fields=["topic", "partition_key", "seq"],
                name="outbox_pending_by_key",
                condition=Q(state="pending"),
            ),
            models.Index(fields=["state", "delivered_at"], name="outbox_state_delivered"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.topic} ({self.id})"


class ProcessedEvent(models.Model):
    """That ``consumer`` has handled event ``event_id``: written with the handler's effect."""

    consumer = models.CharField(max_length=64)
    event_id = models.CharField(max_length=255)
    processed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event_id"], name="processed_once")
        ]

    def __str__(self) -> str:
        return f"{self.consumer}:{self.event_id}"


class StateEntry(models.Model):
    """The embedded default's stand-in for the Dapr state store (same interface, TTL)."""

    key = models.CharField(max_length=255, primary_key=True)
    value = models.JSONField()
    etag = models.CharField(max_length=36)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name_plural = "state entries"

    def __str__(self) -> str:
        return self.key


class ScheduledJob(models.Model):
    """The embedded default's stand-in for the Dapr Scheduler: jobs kept in the database.

    The one scheduler process fires due rows by calling the same ``/job/<name>`` handlers
    the sidecar would call; a restart loses nothing, and past-due jobs fire at once.
    """

    name = models.CharField(max_length=200, primary_key=True)
    due_at = models.DateTimeField(db_index=True)
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Repeat every this many seconds (none = one-shot)."
    )
    data = models.JSONField(default=dict)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class FailureState(models.TextChoices):
    RETRYING = "retrying", "Retrying"
    DEAD = "dead", "Dead letter"
    REPLAYED = "replayed", "Replayed"


class ConsumerFailure(models.Model):
    """An event a consumer failed, held by the app (``events.failures``, the failure policy).

    One row per (consumer, event id), counted with conditional UPDATEs. While RETRYING, the
    process serving the consumer's role runs it again at ``next_attempt_at`` (claimed with
    the lease ``locked_until``); it becomes a dead letter when the budget
    (``EVENT_MAX_ATTEMPTS``) is spent or the event can never be processed. A success deletes
    the row, or marks a replayed one REPLAYED (the admin's replay history). ``envelope`` is
    the CloudEvent as delivered, which every retry runs.
    """

    consumer = models.CharField(max_length=64)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=64)
    topic = models.CharField(max_length=128)
    partition_key = models.CharField(max_length=64, blank=True, default="")
    envelope = models.JSONField()
    state = models.CharField(
        max_length=10, choices=FailureState.choices, default=FailureState.RETRYING
    )
    attempts = models.PositiveIntegerField(default=0)
    configuration_failures = models.PositiveIntegerField(
        default=0, help_text="Attempts the sidecar refused for its configuration (not counted)."
    )
    last_error = models.TextField(blank=True, default="")
    first_failed_at = models.DateTimeField(default=timezone.now)
    last_failed_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "event_id"], name="one_failure_record_per_consumer_event"
            )
        ]
        indexes = [
            models.Index(fields=["state", "dead_at"], name="consumer_failure_state"),
            models.Index(
                fields=["next_attempt_at", "id"],
                name="consumer_failure_due",
                condition=Q(state="retrying"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumer}:{self.event_id} ({self.state})"


class DeadLetterManager(models.Manager):
    def get_queryset(self):
        dead_or_replayed = Q(state=FailureState.DEAD) | Q(replayed_at__isnull=False)
        return super().get_queryset().filter(dead_or_replayed)


class DeadLetter(ConsumerFailure):
    """The consumer failures that were dead-lettered: dead, or replayed since (back in line,
    or handled)."""

    objects = DeadLetterManager()

    class Meta:
        proxy = True
        ordering = ["-dead_at"]


class LiveStream(models.Model):
    """A user's position in the live-updates log: the last sequence number handed out.

    The consumer of ``task-updates`` takes the next number with one upsert, which locks this
    row until its transaction commits, so one user's updates commit in sequence order and a
    stream reading "after n" never skips one that commits late (``events.live``).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True
    )
    last_seq = models.BigIntegerField(default=0)
    last_event_id = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.last_seq}"


class LiveUpdate(models.Model):
    """One task change in its owner's live-updates log, as open pages receive it.

    ``event_id`` is the change's CloudEvent id: the stream's ``id:`` and what a reconnecting
    page sends back as ``Last-Event-ID``. Pruned after ``LIVE_UPDATES_RETENTION_HOURS``.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    seq = models.BigIntegerField()
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=64)
    task_id = models.BigIntegerField()
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "seq"], name="live_update_user_seq"),
            models.UniqueConstraint(fields=["user", "event_id"], name="live_update_user_event"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}#{self.seq} {self.event_type} task {self.task_id}"
