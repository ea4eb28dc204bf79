"""Tasks, categories, tags and the user profile.

Models hold data and invariants only; every change goes through ``tasks.services``.
"""

import datetime as dt
import functools
import hashlib
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Case, F, Func, Q, TextField, Value, When
from django.db.models.functions import Lower
from django.utils import timezone as django_timezone

from todo_project.timezones import (
    SUPPORTED_END,
    SUPPORTED_START,
    SUPPORTED_YEARS,
    supported_zones,
)


def validate_timezone(value: str) -> None:
    """A zone this host can load: what a stored row needs (``US/Eastern`` from before, too)."""
    if value not in available_timezones():
        raise ValidationError(f"'{value}' is not a known IANA time zone.", code="invalid")


def validate_supported_timezone(value: str) -> None:
    """A zone a person may choose now: the curated list of ``todo_project.timezones``."""
    if value not in supported_zones():
        raise ValidationError(f"'{value}' is not a known IANA time zone.", code="invalid")


@functools.cache
def available_timezones() -> frozenset[str]:
    """Every zone this host can load."""
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def timezone_names() -> tuple[str, ...]:
    """Every supported time zone, sorted: the suggestions of the forms' time zone fields."""
    return tuple(sorted(supported_zones()))


def validate_supported_datetime(value) -> None:
    """Refuse date-times outside the supported range (``todo_project.timezones``).

    An aware date-time is checked as the instant it is. A naive one is wall-clock time in a
    zone not applied yet: a day's margin either side keeps applying any zone safe, and the
    instant is checked once it is one (the model's ``full_clean``). A date, by its year.
    """
    if value is None:
        return
    if isinstance(value, dt.datetime):
        margin = dt.timedelta(days=1 if value.tzinfo is None else 0)
        instant = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        inside = SUPPORTED_START - margin <= instant <= SUPPORTED_END + margin
    else:
        inside = SUPPORTED_YEARS[0] <= value.year <= SUPPORTED_YEARS[1]
    if not inside:
        raise ValidationError(
            f"Enter a date between the years {SUPPORTED_YEARS[0]} and {SUPPORTED_YEARS[1]}.",
            code="out_of_range",
        )


def validate_not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("This field may not be blank.", code="blank")


color_validator = RegexValidator(
    r"^#[0-9a-fA-F]{6}$", "Enter a colour as #rrggbb, e.g. #3b82f6.", code="invalid_color"
)


class Priority(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


#: Urgency rank of each priority; sorting uses the stored rank, never the text.
PRIORITY_RANK = {Priority.LOW: 1, Priority.MEDIUM: 2, Priority.HIGH: 3, Priority.URGENT: 4}


class RecurrenceType(models.TextChoices):
    NONE = "none", "Does not repeat"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    YEARLY = "yearly", "Yearly"


class RecurrenceMode(models.TextChoices):
    SCHEDULE = "schedule", "On schedule"
    COMPLETION = "completion", "After completion"


def default_timezone() -> str:
    return settings.TIME_ZONE


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    timezone = models.CharField(
        max_length=64, default=default_timezone, validators=[validate_timezone]
    )
    reminders_enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"


class Category(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="categories"
    )
    name = models.CharField(max_length=100, validators=[validate_not_blank])
    color = models.CharField(max_length=7, default="#3b82f6", validators=[color_validator])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "categories"
        ordering = [Lower("name"), "id"]
        constraints = [
            models.UniqueConstraint(
                "user",
                Lower("name"),
                name="category_name_unique_per_user",
                violation_error_message="You already have a category with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tags"
    )
    name = models.CharField(max_length=50, validators=[validate_not_blank])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = [Lower("name"), "id"]
        constraints = [
            models.UniqueConstraint(
                "user",
                Lower("name"),
                name="tag_name_unique_per_user",
                violation_error_message="You already have a tag with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name


#: The longest description, checked in ``Task.clean`` (so the API, pages and admin agree).
MAX_DESCRIPTION_LENGTH = 10_000


#: Task fields kept by the system, never set by clients (read-only in the API and admin).
TASK_SYSTEM_FIELDS = (
    "completed_at",
    "reminder_sent",
    "next_occurrence_at",
    "last_triggered_at",
    "parent",
    "series",
    "occurrence",
    "created_at",
    "updated_at",
)


class TaskQuerySet(models.QuerySet):
    def for_user(self, user) -> "TaskQuerySet":
        return self.filter(user=user)

    def with_relations(self) -> "TaskQuerySet":
        return self.select_related("category").prefetch_related("tags")


#: The SQLite FTS5 table (``trigram`` tokenizer) indexing each task's title and description
#: under the task's id, kept in sync by triggers (migration 0010). A trigram index can only
#: find words of at least ``SEARCH_TRIGRAM_LENGTH`` characters.
TASK_SEARCH_FTS_TABLE = "tasks_task_search"
SEARCH_TRIGRAM_LENGTH = 3


class SearchText(Func):
    """What ``search`` looks in: the title, a line break, the description.

    Search words are split on whitespace, so none holds the line break and no match can span
    the two fields: a word is in this text exactly when it is in the title or the description.
    On PostgreSQL ``UPPER()`` of it has a ``pg_trgm`` GIN index (migration 0010), which the
    ``icontains`` lookup (``UPPER(...) LIKE UPPER('%word%')``) reads.
    """

    template = "(%(expressions)s)"
    arg_joiner = " || "
    output_field = TextField()

    def __init__(self) -> None:
        super().__init__(F("title"), Value("\n"), F("description"))


class Task(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks"
    )
    title = models.CharField(max_length=255, validators=[validate_not_blank])
    description = models.TextField(blank=True, default="")
    completed = models.BooleanField(default=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    priority = models.CharField(max_length=6, choices=Priority.choices, default=Priority.MEDIUM)
    # Derived from ``priority`` by the database so it can never drift; indexed for sorting.
    priority_rank = models.GeneratedField(
        expression=Case(
            *(When(priority=p.value, then=Value(rank)) for p, rank in PRIORITY_RANK.items()),
            default=Value(0),
        ),
        output_field=models.SmallIntegerField(),
        db_persist=True,
    )
    due_date = models.DateTimeField(null=True, blank=True, validators=[validate_supported_datetime])
    timezone = models.CharField(
        max_length=64, default=default_timezone, validators=[validate_timezone]
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    tags = models.ManyToManyField(Tag, related_name="tasks", blank=True, db_table="task_tags")

    recurrence_rule = models.TextField(blank=True, default="")
    recurrence_type = models.CharField(
        max_length=7, choices=RecurrenceType.choices, default=RecurrenceType.NONE
    )
    recurrence_interval = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    recurrence_mode = models.CharField(
        max_length=10, choices=RecurrenceMode.choices, default=RecurrenceMode.SCHEDULE
    )
    next_occurrence_at = models.DateTimeField(null=True, blank=True)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="spawned",
        help_text="The recurring instance this task was spawned from.",
    )

    series = models.ForeignKey(
        "recurrence.RecurrenceSeries",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="instances",
    )
    occurrence = models.DateTimeField(
        null=True, blank=True, help_text="The occurrence of its series this instance stands for."
    )

    remind_at = models.DateTimeField(
        null=True, blank=True, validators=[validate_supported_datetime]
    )
    remind_before = models.DurationField(
        null=True, blank=True, help_text="Remind this long before the due date."
    )
    reminder_sent = models.BooleanField(default=False)
    ical_uid = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        editable=False,
        help_text="The UID of the calendar item this task was imported from (unique per user).",
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # One index per sort, each led by the owner and ending in the id tie-break, so a
            # page is read straight off the index in either direction.
            models.Index(fields=["user", "created_at", "id"], name="task_user_created"),
            models.Index(fields=["user", "updated_at", "id"], name="task_user_updated"),
            models.Index(fields=["user", "priority_rank", "id"], name="task_user_priority"),
            # Serves due_date ASC NULLS LAST on PostgreSQL; the DESC NULLS LAST twin is created
            # by migration 0002 on PostgreSQL only (SQLite has no NULLS LAST in an index).
            models.Index(fields=["user", "due_date", "id"], name="task_user_due"),
            models.Index(fields=["user", "completed", "due_date"], name="task_user_status_due"),
            # The sidebar's pending count per category, read off the index.
            models.Index(fields=["category", "completed"], name="task_category_status"),
            models.Index(
                fields=["remind_at"],
                name="task_pending_reminder",
                condition=Q(completed=False, reminder_sent=False, remind_at__isnull=False),
            ),
        ]
        constraints = [
            # Exactly once: a series never has two instances for one occurrence, and an
            # instance never spawns twice (complete, reopen, complete again).
            models.UniqueConstraint(
                fields=["series", "occurrence"], name="one_instance_per_occurrence"
            ),
            models.UniqueConstraint(
                fields=["parent"],
                condition=Q(parent__isnull=False, series__isnull=False),
                name="one_spawn_per_instance",
            ),
            # An .ics import is idempotent: a calendar item becomes one task per user.
            models.UniqueConstraint(
                fields=["user", "ical_uid"],
                condition=Q(ical_uid__isnull=False),
                name="one_task_per_ical_uid",
            ),
            models.CheckConstraint(
                condition=Q(priority__in=Priority.values), name="task_priority_valid"
            ),
            models.CheckConstraint(
                condition=Q(recurrence_interval__gte=1), name="task_recurrence_interval_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def tag_names(self) -> list[str]:
        """The task's tag names in a stable order (uses prefetched tags when present)."""
        return sorted((tag.name for tag in self.tags.all()), key=str.casefold)

    @property
    def has_recurrence(self) -> bool:
        return bool(self.recurrence_rule) or self.recurrence_type != RecurrenceType.NONE

    def clean(self) -> None:
        errors = {}
        if len(self.description) > MAX_DESCRIPTION_LENGTH:
            errors["description"] = (
                f"Keep the description to {MAX_DESCRIPTION_LENGTH} characters or fewer "
                f"(it has {len(self.description)})."
            )
        if self.category_id and self.category.user_id != self.user_id:
            errors["category"] = "Category not found."
        if self.remind_before is not None:
            if self.due_date is None:
                errors["remind_before"] = "A reminder offset needs a due date."
            elif self.remind_before.total_seconds() < 0:
                errors["remind_before"] = "The reminder offset cannot be negative."
        if self.remind_at and self.due_date and self.remind_at > self.due_date:
            errors["remind_at"] = "The reminder cannot be after the due date."
        if errors:
            raise ValidationError(errors)


class SavedView(models.Model):
    """A named filter and sort of the task list, shown in the sidebar.

    ``filters`` holds ``GET /api/tasks/`` query parameters (e.g. ``{"view": "today",
    "priority": "high,urgent", "ordering": "-priority"}``), checked by the task FilterSet.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(max_length=100, validators=[validate_not_blank])
    filters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = [Lower("name"), "id"]
        constraints = [
            models.UniqueConstraint(
                "user",
                Lower("name"),
                name="saved_view_name_unique_per_user",
                violation_error_message="You already have a view with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A personal API token, sent as ``Authorization: Token <secret>``.

    Only the secret's SHA-256 ``digest`` is stored (the secret is shown once, at creation);
    ``prefix``, its first characters, tells the user's tokens apart in lists. Revoking one
    deletes it; an expired one stays listed until its owner creates another.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=django_timezone.now)
    #: None: never expires.
    expires_at = models.DateTimeField(null=True, blank=True)
    #: Written at most once a minute (``services.API_TOKEN_LAST_USED_INTERVAL``).
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or django_timezone.now())


class IdempotencyKey(models.Model):
    """The first answer to a ``POST`` of the API sent with an ``Idempotency-Key`` header.

    Written in the transaction of the write it answers (``tasks.api.idempotency``), so the
    two commit together; a retry with the same key gets this answer back instead of writing
    again. ``response_status`` is None only inside that transaction, never once committed.
    Rows older than ``IDEMPOTENCY_KEY_TTL`` are ignored, then purged by the periodic cleanup.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(max_length=255)
    request_method = models.CharField(max_length=10)
    request_path = models.TextField()
    #: SHA-256 of the request body.
    request_digest = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=django_timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.request_method} {self.request_path} ({self.key})"


class FeedToken(models.Model):
    """The secret of a user's iCal feed URL, ``/feeds/<secret>/tasks.ics``.

    One per user: creating another replaces it (the old URL stops working), revoking deletes
    it. As for ``ApiToken``, only the secret's SHA-256 ``digest`` is stored, so the URL is
    shown once, when it is made.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feed_token"
    )
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=django_timezone.now)

    class Meta:
        verbose_name = "calendar feed token"

    def __str__(self) -> str:
        return f"{self.user} ({self.prefix}…)"

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()
