"""Reading tasks: the one FilterSet and sort used by the REST API and the pages."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connections, models, router
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema_field

from todo_project.compiled_reads import CompiledRead
from todo_project.timezones import zone_named

from .models import (
    SEARCH_TRIGRAM_LENGTH,
    TASK_SEARCH_FTS_TABLE,
    ApiToken,
    Category,
    FeedToken,
    Priority,
    RecurrenceMode,
    SavedView,
    SearchText,
    Tag,
    Task,
    validate_supported_datetime,
)

SORT_FIELDS = ("created_at", "due_date", "priority", "title", "updated_at")
DEFAULT_SORT = ("created_at", "desc")
#: The query parameters that sort the tasks, never narrow them.
SORT_PARAMETERS = frozenset({"ordering", "sort_by", "sort_order"})
ORDERING_CHOICES = [(f, f) for f in SORT_FIELDS] + [(f"-{f}", f"-{f}") for f in SORT_FIELDS]


class SmartView(models.TextChoices):
    """The sidebar's built-in views, also the API's ``view`` filter."""

    TODAY = "today", "Today"
    UPCOMING = "upcoming", "Upcoming"
    OVERDUE = "overdue", "Overdue"
    ALL = "all", "All"
    COMPLETED = "completed", "Completed"


#: Upcoming covers today and the next 13 days, in the user's time zone.
UPCOMING_DAYS = 14


def local_midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def smart_view_q(view: str, *, now: dt.datetime, zone: zoneinfo.ZoneInfo) -> Q:
    """The condition of a smart view; days are the user's local days."""
    today = now.astimezone(zone).date()
    pending = Q(completed=False)
    if view == SmartView.TODAY:  # due today, or overdue
        return pending & Q(due_date__lt=local_midnight(today + dt.timedelta(days=1), zone))
    if view == SmartView.UPCOMING:
        end = local_midnight(today + dt.timedelta(days=UPCOMING_DAYS), zone)
        return pending & Q(due_date__gte=local_midnight(today, zone), due_date__lt=end)
    if view == SmartView.OVERDUE:
        return pending & Q(due_date__lt=now)
    if view == SmartView.COMPLETED:
        return Q(completed=True)
    return pending


def _sort_expression(sort_by: str):
    if sort_by == "priority":
        return F("priority_rank")
    if sort_by == "title":
        return Lower("title")
    return F(sort_by)


def task_ordering(sort_by: str, descending: bool) -> list:
    """ORDER BY for a sort key: urgency for priority, due dates without one last, id ties."""
    # Only due_date has NULLs; saying NULLS LAST on a NOT NULL column would stop PostgreSQL
    # from reading the page off the matching index.
    nulls_last = True if sort_by == "due_date" else None
    key = _sort_expression(sort_by)
    if descending:
        return [key.desc(nulls_last=nulls_last), F("id").desc()]
    return [key.asc(nulls_last=nulls_last), F("id").asc()]


def user_timezone(user) -> zoneinfo.ZoneInfo:
    """The user's profile time zone (the site's default without a profile)."""
    profile = getattr(user, "profile", None)
    return zone_named(profile.timezone if profile else None) or timezone.get_default_timezone()


def as_utc(value):
    """An aware date-time in UTC, anything else unchanged: PostgreSQL refuses a UTC offset of
    16 hours or more (``+16:00`` parses, then fails the query)."""
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        return value.astimezone(dt.UTC)
    return value


class DateOrDateTimeField(forms.CharField):
    """Accepts ``2026-12-01`` or an ISO 8601 date-time (naive = the user's time zone)."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        # A bare date first: parse_datetime() would read "2026-12-01" as midnight, and an
        # upper bound would then miss the rest of that day.
        try:
            parsed = parse_date(value) or parse_datetime(value.replace(" ", "+"))
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationError(
                "Enter a date (2026-12-01) or an ISO 8601 date-time (2026-12-01T09:00:00Z).",
                code="invalid",
            )
        validate_supported_datetime(parsed)  # the range every stored date-time lies in
        return as_utc(parsed)


class StrictBooleanField(forms.NullBooleanField):
    """``true``/``false`` (or ``1``/``0``); anything else is an error, never ignored.

    Django's NullBooleanField (and its select widget) read an unknown value as "no filter",
    so ``overdue=maybe`` would silently list everything.
    """

    widget = forms.TextInput
    TRUE = frozenset({"true", "1"})
    FALSE = frozenset({"false", "0"})

    def to_python(self, value):
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if not text:
            return None
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValidationError("Enter true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


@extend_schema_field({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]})
class DateBoundFilter(django_filters.Filter):
    """``<field> <= / >=`` a date or date-time; a bare date covers that whole local day."""

    field_class = DateOrDateTimeField

    def __init__(self, *, upper: bool, **kwargs):
        self.upper = upper
        super().__init__(**kwargs)

    def filter(self, qs, value):
        if value is None:
            return qs
        zone = self.parent.user_timezone()
        if isinstance(value, dt.datetime):
            bound = value if timezone.is_aware(value) else value.replace(tzinfo=zone)
            lookup = "lte" if self.upper else "gte"
        else:
            day = value + dt.timedelta(days=1) if self.upper else value
            bound = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
            lookup = "lt" if self.upper else "gte"
        return qs.filter(**{f"{self.field_name}__{lookup}": bound})


#: Bounds on free-text filters: each word or tag adds a condition to the query.
MAX_FILTER_LENGTH = 200
MAX_SEARCH_WORDS = 20
MAX_FILTER_TAGS = 20


def validate_word_count(value: str) -> None:
    if len(value.split()) > MAX_SEARCH_WORDS:
        raise ValidationError(f"Search for at most {MAX_SEARCH_WORDS} words.", code="too_many")


def validate_tag_count(value: str) -> None:
    if len(_tag_names(value)) > MAX_FILTER_TAGS:
        raise ValidationError(f"Filter by at most {MAX_FILTER_TAGS} tags.", code="too_many")


class PriorityInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    pass


def _user_categories(request) -> QuerySet[Category]:
    if request is None or not request.user.is_authenticated:
        return Category.objects.none()
    return Category.objects.filter(user=request.user)


def _tag_names(value: str) -> list[str]:
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def _fts_phrase(word: str) -> str:
    """``word`` as an FTS5 string: with the trigram tokenizer, a case-insensitive substring."""
    return '"' + word.replace('"', '""') + '"'


class _IdAmong(Func):
    """SQLite: ``id IN (subquery)``, for a subquery that lists ids of every user's tasks.

    In a page's query (sliced) it is written ``+id IN``: the unary plus keeps SQLite from
    driving the query from that list (each id looked up, then the user's rows sorted); it
    reads the user's rows in the page's order off their index and checks each against the
    list, stopping at the end of the page. A COUNT has no page to stop at: there the list
    drives (each listed id looked up by its key), 2 ms instead of 17 for a search that finds
    3,500 tasks among 100,000.
    """

    template = "%(expressions)s"
    arg_joiner = " IN "
    output_field = BooleanField()

    def __init__(self, ids: QuerySet | RawSQL) -> None:
        super().__init__(F("pk"), ids)

    def as_sql(self, compiler, connection, **extra_context):
        if compiler.query.is_sliced:
            extra_context["template"] = "+%(expressions)s"
        return super().as_sql(compiler, connection, **extra_context)


class TaskFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=[("pending", "pending"), ("completed", "completed")], method="filter_status"
    )
    completed = StrictBooleanFilter(field_name="completed")
    priority = PriorityInFilter(
        field_name="priority",
        lookup_expr="in",
        choices=Priority.choices,
        help_text="One priority or several, comma-separated: high,urgent.",
    )
    category = django_filters.ModelChoiceFilter(field_name="category", queryset=_user_categories)
    tags = django_filters.CharFilter(
        method="filter_tags_any",
        help_text=f"Tasks with any of these tags: a,b (at most {MAX_FILTER_TAGS}).",
        max_length=MAX_FILTER_LENGTH,
        validators=[validate_tag_count],
    )
    tags_all = django_filters.CharFilter(
        method="filter_tags_all",
        help_text=f"Tasks with all of these tags: a,b (at most {MAX_FILTER_TAGS}).",
        max_length=MAX_FILTER_LENGTH,
        validators=[validate_tag_count],
    )
    due_before = DateBoundFilter(field_name="due_date", upper=True)
    due_after = DateBoundFilter(field_name="due_date", upper=False)
    created_before = DateBoundFilter(field_name="created_at", upper=True)
    created_after = DateBoundFilter(field_name="created_at", upper=False)
    overdue = StrictBooleanFilter(method="filter_overdue")
    has_due_date = StrictBooleanFilter(field_name="due_date", lookup_expr="isnull", exclude=True)
    has_recurrence = StrictBooleanFilter(method="filter_has_recurrence")
    view = django_filters.ChoiceFilter(
        choices=SmartView.choices,
        method="filter_view",
        help_text="A smart view: today (due today or overdue), upcoming (next 14 days), "
        "overdue, all (pending) or completed. Days are your profile's time zone's.",
    )
    search = django_filters.CharFilter(
        method="filter_search",
        help_text="Words that must all appear in title or description "
        f"(at most {MAX_SEARCH_WORDS}).",
        max_length=MAX_FILTER_LENGTH,
        validators=[validate_word_count],
    )
    ordering = django_filters.ChoiceFilter(
        choices=ORDERING_CHOICES, method="noop", help_text="e.g. -due_date or priority."
    )
    sort_by = django_filters.ChoiceFilter(choices=[(f, f) for f in SORT_FIELDS], method="noop")
    sort_order = django_filters.ChoiceFilter(
        choices=[("asc", "asc"), ("desc", "desc")], method="noop"
    )

    class Meta:
        model = Task
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, only_given: bool = False, **kwargs) -> None:
        """``only_given``: the filters named in ``data`` only (the API's reading; a page builds
        the whole form). django-filter deep-copies each filter of a FilterSet and builds a form
        field for it on every request; the ones not given would filter nothing."""
        if only_given and data is not None:
            self.base_filters = {k: f for k, f in self.base_filters.items() if k in data}
        super().__init__(data, queryset, **kwargs)

    def user_timezone(self) -> zoneinfo.ZoneInfo:
        request = self.request
        if request is not None and request.user.is_authenticated:
            return user_timezone(request.user)
        return timezone.get_default_timezone()

    def noop(self, qs, name, value):
        return qs

    def filter_view(self, qs, name, value):
        return qs.filter(smart_view_q(value, now=timezone.now(), zone=self.user_timezone()))

    def filter_status(self, qs, name, value):
        return qs.filter(completed=(value == "completed"))

    def _tag_ids(self) -> dict[str, int]:
        """The requesting user's tags named in ``tags`` and ``tags_all``: lower-cased name to
        id, in one query through the ``(user, lower(name))`` index, for both filters."""
        if not hasattr(self, "_tag_ids_by_name"):
            data = self.form.cleaned_data
            names = {n for key in ("tags", "tags_all") for n in _tag_names(data.get(key) or "")}
            request = self.request
            if not names or request is None or not request.user.is_authenticated:
                self._tag_ids_by_name = {}
            else:
                tags = Tag.objects.filter(user=request.user).annotate(lname=Lower("name"))
                rows = tags.filter(lname__in=names).order_by().values_list("lname", "pk")
                self._tag_ids_by_name = dict(rows)
        return self._tag_ids_by_name

    @staticmethod
    def _tagged(qs: QuerySet[Task], tag_ids: list[int]) -> QuerySet[Task]:
        """The tasks of ``qs`` with any of these tags, read off ``task_tags_tag_task``.

        Literal ids, not a subquery on names: the planner then knows how many tasks carry each
        tag and either checks a page's rows against the ``(task_id, tag_id)`` key or reads the
        tag's tasks (a count) off the index on ``(tag_id, task_id)``.
        """
        through = Task.tags.through.objects.filter(tag_id__in=tag_ids)
        if connections[qs.db].vendor == "sqlite":
            return qs.filter(_IdAmong(through.values("task_id")))
        return qs.filter(Exists(through.filter(task=OuterRef("pk"))))

    def count_from_tag_links(self) -> int | None:
        """With ``tags`` or ``tags_all`` the only filter (a sort aside), the number of matching
        tasks read off the ``(tag_id, task_id)`` index alone, without visiting the tasks (at a
        million tasks, 2 ms instead of 35); None otherwise.

        Sound because a task only ever carries its owner's tags: every write links tags by name
        among the user's own (``services``), and these ids are the requesting user's, so their
        links are links of the user's tasks (``tests/tasks/test_tag_filter_count.py``).
        """
        data = self.form.cleaned_data
        given = {key for key, value in data.items() if value not in (None, "")}
        given -= SORT_PARAMETERS
        if given not in ({"tags"}, {"tags_all"}):
            return None
        (key,) = given
        names = set(_tag_names(data[key]))
        if not names:
            return None  # "tags=," filters nothing
        ids = self._tag_ids()
        links = Task.tags.through.objects.order_by()
        if key == "tags":
            tag_ids = {ids[name] for name in names if name in ids}
            tagged = links.filter(tag_id__in=tag_ids)
            # A task is linked to a tag once: one tag's links are its tasks, no DISTINCT.
            return (
                tagged.count() if len(tag_ids) == 1 else tagged.values("task_id").distinct().count()
            )
        if not names <= ids.keys():
            return 0
        return (
            links.filter(tag_id__in=[ids[name] for name in names])
            .values("task_id")
            .annotate(tags=Count("tag_id"))
            .filter(tags=len(names))
            .count()
        )

    def filter_tags_any(self, qs, name, value):
        names = _tag_names(value)
        if not names:
            return qs
        ids = self._tag_ids()
        tag_ids = sorted({ids[n] for n in names if n in ids})
        return self._tagged(qs, tag_ids) if tag_ids else qs.none()

    def filter_tags_all(self, qs, name, value):
        ids = self._tag_ids()
        for tag_name in _tag_names(value):
            if tag_name not in ids:
                return qs.none()
            qs = self._tagged(qs, [ids[tag_name]])
        return qs

    def filter_overdue(self, qs, name, value):
        overdue = Q(completed=False, due_date__lt=timezone.now())
        return qs.filter(overdue) if value else qs.exclude(overdue)

    def filter_has_recurrence(self, qs, name, value):
        recurring = ~Q(recurrence_rule="") | ~Q(recurrence_type="none")
        return qs.filter(recurring) if value else qs.exclude(recurring)

    def filter_search(self, qs, name, value):
        """Every word in the title or the description, ignoring case (docs/search.md).

        PostgreSQL: ``UPPER(title || E'\\n' || description) LIKE UPPER('%word%')`` per word,
        through the trigram index. SQLite: the words of 3 characters or more through the FTS5
        trigram table, shorter ones by ``LIKE`` over the user's rows.
        """
        words = value.split()
        if connections[qs.db].vendor == "sqlite":
            indexed = [w for w in words if len(w) >= SEARCH_TRIGRAM_LENGTH]
            if indexed:
                table, match = TASK_SEARCH_FTS_TABLE, " AND ".join(map(_fts_phrase, indexed))
                found = RawSQL(f"SELECT rowid FROM {table} WHERE {table} MATCH %s", [match])
                qs = qs.filter(_IdAmong(found))
            words = [w for w in words if len(w) < SEARCH_TRIGRAM_LENGTH]
        if words:
            qs = qs.alias(search_text=SearchText())
            for word in words:
                qs = qs.filter(search_text__icontains=word)
        return qs

    def sort_key(self) -> tuple[str, bool]:
        data = self.form.cleaned_data
        if data.get("ordering"):
            ordering = data["ordering"]
            return ordering.lstrip("-"), ordering.startswith("-")
        sort_by = data.get("sort_by") or DEFAULT_SORT[0]
        return sort_by, (data.get("sort_order") or DEFAULT_SORT[1]) == "desc"

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        sort_by, descending = self.sort_key()
        return queryset.order_by(*task_ordering(sort_by, descending))


def task_filters_given(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` (``GET /api/tasks/``'s query) names any filter or sort."""
    return bool(params.keys() & TaskFilterSet.base_filters.keys())


def task_filter(
    queryset: QuerySet[Task], *, user, params: Mapping[str, Any]
) -> tuple[QuerySet[Task], TaskFilterSet | None]:
    """``queryset`` narrowed and sorted by the API's task filters (``params``, strings as in
    a query string), and the FilterSet that did it; without a filter or sort, the default
    sort and no FilterSet (building one costs more than the query it would not change).
    Raises DRF's ``ValidationError`` naming each bad parameter."""
    if not task_filters_given(params):
        sort_by, order = DEFAULT_SORT
        return queryset.order_by(*task_ordering(sort_by, order == "desc")), None
    filterset = TaskFilterSet(params, queryset, request=SimpleNamespace(user=user), only_given=True)
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset.qs, filterset


def task_get(*, user, task_id: int) -> Task:
    """The user's task or ``Task.DoesNotExist`` (another user's task does not exist)."""
    return Task.objects.for_user(user).with_relations().get(pk=task_id)


@dataclass(frozen=True)
class Sidebar:
    """What the web app's sidebar shows: view counts, categories (with their pending
    counts), tags, saved views."""

    counts: dict[str, int]
    categories: list[Category]
    tags: list[Tag]
    saved_views: list[SavedView]


class SubqueryCount(Subquery):
    """``COUNT(*)`` of a queryset as a scalar subquery: each count is read off an index."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) _counted)"
    output_field = IntegerField()

    def __init__(self, queryset: QuerySet, **kwargs) -> None:
        super().__init__(queryset.order_by().annotate(_one=Value(1)).values("_one"), **kwargs)


def sidebar_get(*, user, now: dt.datetime | None = None) -> Sidebar:
    """Four queries whatever the number of tasks, categories, tags or views; every count is
    an index range (``task_user_status_due``, ``task_category_status``), never a scan of all
    the user's tasks."""
    now = now or timezone.now()
    zone = user_timezone(user)
    tasks = Task.objects.filter(user=OuterRef("pk"))
    counts = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .values(
            **{
                view: SubqueryCount(tasks.filter(smart_view_q(view, now=now, zone=zone)))
                for view in SmartView
            }
        )
        .get()
    )
    categories = (
        Category.objects.filter(user=user)
        .annotate(
            pending_count=SubqueryCount(
                Task.objects.filter(category=OuterRef("pk"), completed=False)
            )
        )
        .order_by(Lower("name"), "id")
    )
    tags = Tag.objects.filter(user=user).order_by(Lower("name"), "id")
    return Sidebar(
        counts=counts,
        categories=list(categories),
        tags=list(tags),
        saved_views=list(SavedView.objects.filter(user=user)),
    )


def category_list_with_counts(*, user) -> QuerySet[Category]:
    """The user's categories by name, each with ``task_count`` (all) and ``pending_count``."""
    return (
        Category.objects.filter(user=user)
        .annotate(
            task_count=Count("tasks"),
            pending_count=Count("tasks", filter=Q(tasks__completed=False)),
        )
        .order_by(Lower("name"), "id")
    )


def tag_list_with_counts(*, user) -> QuerySet[Tag]:
    """The user's tags by name, each with ``task_count`` (all) and ``pending_count``."""
    return (
        Tag.objects.filter(user=user)
        .annotate(
            task_count=Count("tasks"),
            pending_count=Count("tasks", filter=Q(tasks__completed=False)),
        )
        .order_by(Lower("name"), "id")
    )


def task_spawned_instance(*, task: Task) -> Task | None:
    """The instance the recurrence consumer created when ``task`` was completed, if any."""
    return Task.objects.for_user(task.user_id).with_relations().filter(parent=task).first()


#: How many earlier instances of a series the task page lists.
SERIES_HISTORY_LIMIT = 20


def task_page_context(*, task: Task) -> dict:
    """Everything the task page shows: the rule in words, the series around this instance
    (earlier instances with their completions, the next occurrences) and the reminder's
    delivery status. A fixed number of queries whatever the series' length."""
    from recurrence.describe import describe
    from recurrence.series import effective_rule, task_upcoming

    rule = effective_rule(task)
    earlier: list[Task] = []
    upcoming: list[dt.datetime] = []
    if task.series_id is not None:
        earlier = list(
            Task.objects.filter(series_id=task.series_id, user_id=task.user_id)
            .exclude(pk=task.pk)
            .filter(Q(occurrence__lt=task.occurrence) if task.occurrence else Q(completed=True))
            .order_by(F("occurrence").desc(nulls_last=True), "-id")[:SERIES_HISTORY_LIMIT]
        )
    # In completion mode the next dates depend on when this one is completed: none to list.
    if rule and not task.completed and task.recurrence_mode != RecurrenceMode.COMPLETION:
        upcoming = [when for when in task_upcoming(task, count=6) if when != task.due_date][:5]
    delivery = task.deliveries.order_by("-remind_at").first() if task.remind_at else None
    return {
        "task": task,
        "recurrence": describe(rule) if rule else "",
        "rule": rule,
        "earlier_instances": earlier,
        "next_occurrences": upcoming,
        "delivery": delivery,
        "spawned": task_spawned_instance(task=task) if task.completed and rule else None,
    }


# --- "load more": keyset pages ------------------------------------------------------------
#
# A page continues after the last row shown, not at an offset: completing or deleting rows
# above it (which drops them from a pending list) never repeats or skips a task.


def with_cursor_key(queryset: QuerySet[Task], *, sort_by: str) -> QuerySet[Task]:
    """Annotate each row with the value it is sorted by (``cursor_key``)."""
    return queryset.annotate(cursor_key=_sort_expression(sort_by))


def task_cursor(task: Task) -> str:
    """The position just after ``task`` (annotated by ``with_cursor_key``), URL-safe."""
    value = task.cursor_key
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = json.dumps([value, task.pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fits_bigint(value: object) -> bool:
    return isinstance(value, int) and -(2**63) <= value < 2**63


def _decode_cursor(cursor: str, sort_by: str) -> tuple[object, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, last_id = json.loads(raw)
        if not _fits_bigint(last_id):
            raise ValueError
        if sort_by in ("due_date", "created_at", "updated_at") and value is not None:
            value = as_utc(dt.datetime.fromisoformat(value))
            if timezone.is_naive(value):
                raise ValueError
        elif sort_by == "priority" and not _fits_bigint(value):
            raise ValueError
        elif sort_by == "title":
            value.encode()  # a lone surrogate cannot be sent to the database
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError):
        raise ValidationError({"after": "This is not a position in this list."}) from None
    return value, last_id


def tasks_after(
    queryset: QuerySet[Task], *, sort_by: str, descending: bool, cursor: str
) -> QuerySet[Task]:
    """The rows of a ``with_cursor_key`` queryset that come after ``cursor`` in its order
    (``task_ordering``: the sort value, due dates without one last, then the id)."""
    value, last_id = _decode_cursor(cursor, sort_by)
    beyond = "lt" if descending else "gt"
    same_key_later = Q(**{f"id__{beyond}": last_id})
    if value is None:  # only due_date is ever NULL; those rows come last in both directions
        return queryset.filter(Q(due_date__isnull=True) & same_key_later)
    later = Q(**{f"cursor_key__{beyond}": value}) | (Q(cursor_key=value) & same_key_later)
    if sort_by == "due_date":
        later |= Q(due_date__isnull=True)
    return queryset.filter(later)


# --- the labels pages and the API access page ---------------------------------------------


def category_get(*, user, category_id: int) -> Category:
    """The user's category with ``task_count`` and ``pending_count``, or
    ``Category.DoesNotExist`` (another user's category does not exist)."""
    return category_list_with_counts(user=user).get(pk=category_id)


def tag_get(*, user, tag_id: int) -> Tag:
    """The user's tag with ``task_count`` and ``pending_count``, or ``Tag.DoesNotExist``."""
    return tag_list_with_counts(user=user).get(pk=tag_id)


def category_names(*, user, category_ids: set[int]) -> dict[int, str]:
    """The names of the user's categories among ``category_ids`` (no query when empty)."""
    if not category_ids:
        return {}
    categories = Category.objects.filter(user=user, pk__in=category_ids)
    return dict(categories.values_list("pk", "name"))


def saved_view_list(*, user) -> QuerySet[SavedView]:
    """The user's saved views, by name."""
    return SavedView.objects.filter(user=user)


def saved_view_get(*, user, view_id: int) -> SavedView:
    """The user's saved view, or ``SavedView.DoesNotExist``."""
    return SavedView.objects.get(user=user, pk=view_id)


def api_token_list(*, user) -> QuerySet[ApiToken]:
    """The user's API tokens, newest first (expired ones too, until they create another)."""
    return ApiToken.objects.filter(user=user)


def api_token_get(*, user, token_id: int) -> ApiToken:
    """The user's API token, or ``ApiToken.DoesNotExist`` (another user's does not exist)."""
    return ApiToken.objects.get(user=user, pk=token_id)


@functools.cache
def _token_columns() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The columns of an ``ApiToken`` and of its user, as model instances hold them."""
    user_model = get_user_model()
    return (
        tuple(field.attname for field in ApiToken._meta.concrete_fields),
        tuple(field.attname for field in user_model._meta.concrete_fields),
    )


def _token_with_user(digest: str) -> QuerySet[dict]:
    token_columns, user_columns = _token_columns()
    tokens = ApiToken.objects.filter(digest=digest).order_by()  # one row: no sort
    return tokens.values(*token_columns, *(f"user__{column}" for column in user_columns))


#: Every API request reads its token with its user: compiled once (todo_project.compiled_reads).
_TOKEN_WITH_USER = CompiledRead(_token_with_user, digest=str)


def api_token_for_secret(*, secret: str) -> ApiToken | None:
    """The token whose secret this is, with its user, or None.

    Found by the secret's SHA-256 digest (a unique index): a timing difference in that
    lookup would tell about digests, which an attacker cannot steer toward a secret. The
    token and its user are the instances ``select_related("user")`` would give.
    """
    alias = router.db_for_read(ApiToken)
    rows = _TOKEN_WITH_USER.rows(using=alias, digest=ApiToken.digest_of(secret))
    if not rows:
        return None
    (row,) = rows
    token_columns, user_columns = _token_columns()
    token = ApiToken.from_db(alias, token_columns, [row[column] for column in token_columns])
    token.user = get_user_model().from_db(
        alias, user_columns, [row[f"user__{column}"] for column in user_columns]
    )
    return token


# --- calendar feed (issue 13) -----------------------------------------------------------------

#: The most tasks a feed lists: the pending ones due latest first, then the undated newest.
FEED_TASK_LIMIT = 1000


def feed_token_get(*, user) -> FeedToken | None:
    """The user's calendar feed token, or None."""
    return FeedToken.objects.filter(user=user).first()


def feed_owner_for_secret(*, secret: str):
    """The user whose feed URL carries this secret, or None (unknown or revoked)."""
    tokens = FeedToken.objects.select_related("user")
    try:  # get(): the digest is unique, no ORDER BY
        return tokens.get(digest=FeedToken.digest_of(secret)).user
    except FeedToken.DoesNotExist:
        return None


def feed_tasks(*, user, dated_only: bool = False) -> list[Task]:
    """The user's pending tasks for the feed, at most ``FEED_TASK_LIMIT``: latest due first,
    undated last (newest first); with their category, series and tags (three queries)."""
    tasks = Task.objects.for_user(user).filter(completed=False)
    if dated_only:
        tasks = tasks.filter(due_date__isnull=False)
    tasks = tasks.select_related("category", "series").prefetch_related("tags")
    ordered = tasks.order_by(F("due_date").desc(nulls_last=True), "-created_at", "-id")
    return list(ordered[:FEED_TASK_LIMIT])
