"""The one write path for tasks, categories and tags.

Views, serializers, the admin, pages and event handlers call these functions and nothing
else to change data. Each is atomic and validates with ``full_clean()`` before saving.

Every writing service is declared with ``@task_service``: atomic, and emitting its own
event, so the safety net for saves that bypass the services (``tasks.signals``) stays quiet
while it runs. A public function here that writes without it fails
``tests/tasks/test_services.py``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import icalendar
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.utils import timezone
from icalendar import ComponentFactory
from icalendar.parser.ical.calendar import CalendarIcalParser

from events import emit
from events.payloads import changes_data, task_deleted_event, task_event
from events.registry import EventType
from recurrence.models import RecurrenceSeries
from recurrence.rules import validate_task_recurrence
from recurrence.series import (
    next_occurrence,
    series_count_instance,
    series_end,
    series_follow_edit,
    series_start,
)
from todo_project.timezones import from_local_naive, localize, supported_zones, to_local_naive

from . import signals
from .feeds import feed_uid_owner
from .models import (
    ApiToken,
    Category,
    FeedToken,
    Priority,
    Profile,
    RecurrenceMode,
    RecurrenceType,
    SavedView,
    Tag,
    Task,
    validate_supported_datetime,
)
from .quickadd import parse_quick_add

logger = logging.getLogger(__name__)

#: Fields a client may set through ``task_create`` / ``task_update``.
TASK_EDITABLE_FIELDS = (
    "title",
    "description",
    "completed",
    "priority",
    "due_date",
    "timezone",
    "category",
    "tags",
    "recurrence_rule",
    "recurrence_type",
    "recurrence_interval",
    "recurrence_mode",
    "remind_at",
    "remind_before",
)

#: Fields whose change has the task's rule checked again (it is anchored on the due date).
RECURRENCE_INPUTS = frozenset(
    {"recurrence_rule", "recurrence_type", "recurrence_interval", "due_date", "timezone"}
)

#: What a write that names a field the service does not take says about it.
UNKNOWN_FIELD_MESSAGE = "Unknown field."


@dataclass(frozen=True)
class Change:
    old: Any
    new: Any


_P = ParamSpec("_P")
_R = TypeVar("_R")


def task_service(service: Callable[_P, _R]) -> Callable[_P, _R]:
    """Declare a writing service: atomic, and the safety net quiet while it runs.

    The service emits its own event, so ``tasks.signals`` must not add a second one for the
    saves it makes; the silence comes with the atomic block, so no service can forget it.
    """

    @functools.wraps(service)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with transaction.atomic(), signals.services_writing():
            return service(*args, **kwargs)

    run.is_task_service = True
    return run


# --- helpers -----------------------------------------------------------------------------


def reject_unknown_fields(given: Iterable[str], known: Iterable[str]) -> None:
    """A 400 naming each field that is not one of ``known``, so a typo like ``prority`` is
    an error, not a silent no-op (the API's serializers and ``task_update`` both ask)."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValidationError({name: UNKNOWN_FIELD_MESSAGE for name in unknown})


def profile_get(*, user) -> Profile:
    """The user's profile, created on first use. Not a ``@task_service``: it saves no Task,
    so there is no safety net to silence, and a page view that reads the profile opens no
    transaction (``get_or_create`` takes a savepoint only when it creates)."""
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def wall_clock_minus(instant: dt.datetime, offset: dt.timedelta, tz_name: str) -> dt.datetime:
    """``instant - offset`` in local wall-clock time: "1 day before" keeps the time of day."""
    return from_local_naive(to_local_naive(instant, tz_name) - offset, tz_name)


def _clean_title(title: str) -> str:
    return title.strip() if isinstance(title, str) else title


#: Lists of tags are written comma-separated (``?tags=a,b``, the task form), so a name
#: with a comma could never be found again.
TAG_COMMA_MESSAGE = "Tag names cannot contain commas."


def _check_tag_name(name: str, *, field: str) -> None:
    if "," in name:
        raise ValidationError({field: TAG_COMMA_MESSAGE})


#: The most tags one task may have (each is a row to resolve and link).
MAX_TAGS_PER_TASK = 50


def _normalise_tag_names(names: Iterable[str]) -> list[str]:
    """Trim names and drop case-insensitive duplicates, keeping the first spelling."""
    seen: dict[str, str] = {}
    for name in names:
        name = name.strip()
        if not name:
            raise ValidationError({"tags": "Tag names may not be blank."})
        _check_tag_name(name, field="tags")
        if len(name) > 50:
            raise ValidationError({"tags": f"Tag '{name[:20]}…' is longer than 50 characters."})
        seen.setdefault(name.casefold(), name)
        if len(seen) > MAX_TAGS_PER_TASK:
            raise ValidationError({"tags": f"A task can have at most {MAX_TAGS_PER_TASK} tags."})
    return list(seen.values())


@task_service
def tags_resolve(*, user, names: Iterable[str]) -> list[Tag]:
    """The user's tags with these names, creating the unknown ones (case-insensitive).

    A fixed number of queries whatever the number of names: one when all exist, three
    when some are new (read, insert the missing ones, read again).
    """
    return _resolve_tags(user_id=user.pk, names=names)


def _resolve_tags(*, user_id: int, names: Iterable[str]) -> list[Tag]:
    """``tags_resolve`` inside a service's own atomic block (no savepoint of its own), in
    the tags' order (``Tag.Meta.ordering``), so the list can stand for ``task.tags.all()``."""
    names = _normalise_tag_names(names)
    if not names:
        return []
    # ``lower(name) IN (lower(%s), ...)`` for this user: the expression of the
    # tag_name_unique_per_user index, which answers the lookup (and the conflicts below).
    named = Tag.objects.annotate(lowered=Lower("name")).filter(
        user_id=user_id, lowered__in=[Lower(Value(name)) for name in names]
    )
    tags = list(named)
    if len(tags) < len(names):
        # A name the read missed, or one created concurrently since, conflicts on the
        # unique index and is skipped; the second read finds every tag either way.
        Tag.objects.bulk_create(
            [Tag(user_id=user_id, name=name) for name in names], ignore_conflicts=True
        )
        tags = list(named.all())
    return tags


def _cache_tags(task: Task, tags: list[Tag]) -> None:
    """Make ``tags`` (in ``Tag.Meta.ordering``) what ``task.tags.all()`` answers, as a
    ``prefetch_related("tags")`` would: the event and the API's answer read no tags again."""
    queryset = task.tags.all()
    queryset._result_cache = list(tags)
    queryset._prefetch_done = True
    task._prefetched_objects_cache = {
        **getattr(task, "_prefetched_objects_cache", {}),
        "tags": queryset,
    }


#: The earliest a reminder may come before its due date.
MAX_REMIND_BEFORE = dt.timedelta(days=365)


def _apply_reminder_rules(task: Task, data: Mapping[str, Any]) -> None:
    """Derive ``remind_at`` from ``remind_before``; reject giving both."""
    if task.remind_before is not None and task.remind_before > MAX_REMIND_BEFORE:
        # Checked before any arithmetic: a larger offset can run off the calendar.
        raise ValidationError(
            {"remind_before": f"Remind at most {MAX_REMIND_BEFORE.days} days before."}
        )
    if data.get("remind_at") is not None and data.get("remind_before") is not None:
        derived = (
            wall_clock_minus(task.due_date, data["remind_before"], task.timezone)
            if task.due_date is not None
            else None
        )
        # A task read and sent back whole (a PUT) carries the remind_at derived from its
        # offset: that is one reminder, not two. Any other remind_at is a contradiction.
        if localize(data["remind_at"], task.timezone) != derived:
            raise ValidationError(
                {"remind_before": "Give either remind_at or remind_before, not both."}
            )
        data = {k: v for k, v in data.items() if k != "remind_at"}
    if "remind_at" in data and "remind_before" not in data:
        task.remind_before = None  # an absolute time (or none at all) replaces the offset
    if task.remind_before is not None and task.due_date is not None:
        task.remind_at = wall_clock_minus(task.due_date, task.remind_before, task.timezone)
    elif "remind_before" in data and data["remind_before"] is None and "remind_at" not in data:
        task.remind_at = None


#: Relations ``full_clean`` would check with one query each, that the services set from rows
#: they already hold (the acting user, the instance a spawn comes from, the series they start
#: or keep): the database's foreign keys still guard them.
_RELATIONS_SET_BY_SERVICES = ("user", "parent", "series")


def _full_clean(task: Task) -> None:
    """``full_clean`` without round trips the services make needless.

    Field validators, ``Task.clean`` and the category's check stay. Skipped: the relations
    the services set themselves (``_RELATIONS_SET_BY_SERVICES``) and the constraints: the
    check constraints repeat the fields' own validators (a choice, a minimum), which report
    the error first, and the unique ones concern series, occurrence and parent, which only
    the services set (a spawn's clash is the IntegrityError ``task_spawn_next`` expects; an
    edit keeps the row's own values).
    """
    task.full_clean(exclude=_RELATIONS_SET_BY_SERVICES, validate_constraints=False)


def task_snapshot(task: Task) -> dict[str, Any]:
    """The values ``task_update`` compares to report exactly what changed (tags aside)."""
    values = {f: getattr(task, f) for f in TASK_EDITABLE_FIELDS if f not in ("tags", "category")}
    values["category"] = task.category_id
    values["completed_at"] = task.completed_at
    values["reminder_sent"] = task.reminder_sent
    return values


# --- tasks -------------------------------------------------------------------------------


@task_service
def task_create(
    *,
    user,
    title: str,
    description: str = "",
    priority: str = Priority.MEDIUM,
    due_date: dt.datetime | None = None,
    timezone_name: str | None = None,
    category: Category | None = None,
    tags: Iterable[str] = (),
    completed: bool = False,
    recurrence_rule: str = "",
    recurrence_type: str = RecurrenceType.NONE,
    recurrence_interval: int = 1,
    recurrence_mode: str = RecurrenceMode.SCHEDULE,
    remind_at: dt.datetime | None = None,
    remind_before: dt.timedelta | None = None,
    parent: Task | None = None,
    series=None,
    occurrence: dt.datetime | None = None,
    ical_uid: str | None = None,
) -> Task:
    tz_name = timezone_name or profile_get(user=user).timezone
    task = Task(
        user=user,
        title=_clean_title(title),
        description=description or "",
        priority=priority,
        due_date=localize(due_date, tz_name),
        timezone=tz_name,
        category=category,
        recurrence_rule=(recurrence_rule or "").strip(),
        recurrence_type=recurrence_type,
        recurrence_interval=recurrence_interval,
        recurrence_mode=recurrence_mode,
        remind_at=localize(remind_at, tz_name),
        remind_before=remind_before,
        parent=parent,
        ical_uid=ical_uid,
    )
    if completed:
        task.completed = True
        task.completed_at = timezone.now()
    _apply_reminder_rules(task, {"remind_at": remind_at, "remind_before": remind_before})
    validate_task_recurrence(task)
    _full_clean(task)
    names = _normalise_tag_names(tags)  # a bad name is a 400 before anything is written
    if series is not None:  # a spawned instance joins its series
        task.series, task.occurrence = series, occurrence
    else:
        series_start(task)
    task.save()
    resolved = _resolve_tags(user_id=user.pk, names=names)
    if resolved:  # a new task has no links yet: insert them, nothing to read or compare
        Task.tags.through.objects.bulk_create(
            [Task.tags.through(task_id=task.pk, tag_id=tag.pk) for tag in resolved]
        )
    _cache_tags(task, resolved)
    emit(EventType.TASK_CREATED, task_event(task), partition_key=task.pk)
    return task


@task_service
def task_update(*, task: Task, data: Mapping[str, Any]) -> tuple[Task, dict[str, Change]]:
    """Apply ``data`` (a subset of TASK_EDITABLE_FIELDS) and return the exact changes.

    Completing a repeating task computes when its next instance is due, once, here: it is
    shown at once (``next_occurrence_at``) and handed on in the ``task.completed`` event to
    ``task_spawn_next``, which creates that instance.

    The task comes back with its tags and series loaded: the event and the API's answer
    read neither again.
    """
    return _update(task=task, data=data)


def _update(*, task: Task, data: Mapping[str, Any]) -> tuple[Task, dict[str, Change]]:
    """``task_update`` inside a service's atomic block (no savepoint of its own)."""
    reject_unknown_fields(data, TASK_EDITABLE_FIELDS)

    _lock_and_refresh(task)
    before = task_snapshot(task)
    derived_before = _derived_columns(task)
    linked = list(task.tags.all())
    old_tags = task.tag_names()

    tz_name = data.get("timezone", task.timezone)
    for field in TASK_EDITABLE_FIELDS:
        if field not in data or field in ("tags", "completed"):
            continue
        value = data[field]
        if field in ("due_date", "remind_at"):
            value = localize(value, tz_name)
        elif field == "title":
            value = _clean_title(value)
        elif field == "recurrence_rule":
            value = (value or "").strip()
        elif field == "description":
            value = value or ""
        setattr(task, field, value)

    if "completed" in data and bool(data["completed"]) != task.completed:
        task.completed = bool(data["completed"])
        task.completed_at = timezone.now() if task.completed else None

    reminder_inputs = {k: data[k] for k in ("remind_at", "remind_before") if k in data}
    if reminder_inputs or "due_date" in data or "timezone" in data:
        _apply_reminder_rules(task, reminder_inputs)
    if task.remind_at != before["remind_at"]:
        task.reminder_sent = False
    if data.keys() & RECURRENCE_INPUTS:  # a stored rule is not re-checked on every edit
        validate_task_recurrence(task)
    if "category" in data:
        task.full_clean(exclude=_RELATIONS_SET_BY_SERVICES, validate_constraints=False)
    else:  # the stored category is not checked again
        task.full_clean(
            exclude=(*_RELATIONS_SET_BY_SERVICES, "category"), validate_constraints=False
        )

    after = task_snapshot(task)
    changes = {
        name: Change(before[name], after[name]) for name in after if before[name] != after[name]
    }
    if changes:
        series_follow_edit(task, set(changes))
        if "completed" in changes and task.completed:
            task.next_occurrence_at = next_occurrence(task, completed_at=task.completed_at)
    if changes:
        moved = [name for name, old in derived_before.items() if getattr(task, name) != old]
        task.save(update_fields=[*changes, *moved, "updated_at"])
    if "tags" in data:
        new_tags = _resolve_tags(user_id=task.user_id, names=data["tags"])
        new_names = sorted((t.name for t in new_tags), key=str.casefold)
        if new_names != old_tags:
            _relink_tags(task, old=linked, new=new_tags)
            changes["tags"] = Change(old_tags, new_names)
            if len(changes) == 1:
                task.save(update_fields=["updated_at"])
    if changes:
        _emit_task_changes(task, changes)
    return task, changes


#: Columns an edit derives from the changes it reports (``task_snapshot``): completing sets
#: the next occurrence, the series follow-up the series and occurrence.
_DERIVED_COLUMNS = ("next_occurrence_at", "series_id", "occurrence")


def _derived_columns(task: Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in _DERIVED_COLUMNS}


def _relink_tags(task: Task, *, old: list[Tag], new: list[Tag]) -> None:
    """Replace the task's tags ``old`` (read under the row's lock) by ``new``: a DELETE and an
    INSERT at most, where ``tags.set()`` would read the links once more first."""
    through = Task.tags.through
    old_ids, new_ids = {tag.pk for tag in old}, {tag.pk for tag in new}
    if old_ids - new_ids:
        through.objects.filter(task_id=task.pk, tag_id__in=old_ids - new_ids).delete()
    if new_ids - old_ids:
        through.objects.bulk_create(
            [through(task_id=task.pk, tag_id=tag_id) for tag_id in sorted(new_ids - old_ids)],
            ignore_conflicts=True,
        )
    _cache_tags(task, new)


def _lock_and_refresh(task: Task) -> None:
    """Lock the row and reload it, with its series and tags, so concurrent updates apply one
    after the other (two statements).

    Without this, two requests that loaded the same task would each write back the columns
    they changed from a stale row (a title edit silently reopening a completion).
    """
    # Only the task's row is locked: PostgreSQL refuses FOR UPDATE on the nullable side of
    # the outer joins to the series and the category (read for ``Task.clean``).
    task.refresh_from_db(
        from_queryset=Task.objects.select_for_update(of=("self",)).select_related(
            "series", "category"
        )
    )
    _cache_tags(task, list(task.tags.all()))


def _emit_task_changes(task: Task, changes: dict[str, Change]) -> None:
    """One event per change: ``task.completed`` when it completed, else ``task.updated``."""
    completed_change = changes.get("completed")
    if completed_change is not None and completed_change.new:
        payload = task_event(task, has_recurrence=task.has_recurrence)
        emit(EventType.TASK_COMPLETED, payload, partition_key=task.pk)
    else:
        payload = task_event(task, changes=changes_data(changes))
        emit(EventType.TASK_UPDATED, payload, partition_key=task.pk)


@task_service
def task_complete(*, task: Task) -> Task:
    """Mark the task completed (a no-op if it already is)."""
    if task.completed:
        return task
    task, _ = _update(task=task, data={"completed": True})
    return task


@task_service
def task_reopen(*, task: Task) -> Task:
    """Mark a completed task pending again (a no-op if it is pending)."""
    if not task.completed:
        return task
    task, _ = _update(task=task, data={"completed": False})
    return task


@task_service
def task_delete(*, task: Task) -> None:
    task_id, user_id = task.pk, task.user_id
    task.delete()
    emit(
        EventType.TASK_DELETED,
        task_deleted_event(task_id=task_id, user_id=user_id),
        partition_key=task_id,
    )


@task_service
def task_spawn_next(*, task_id: int, next_due: dt.datetime | None) -> Task | None:
    """Create the instance after a completed one, due at ``next_due``; None if there is none.

    ``next_due`` is what completing the task computed (``task_update``), carried by its
    ``task.completed`` event: it is not computed again. None there means the series is
    exhausted, and it ends. An event that no longer matches the task (reopened since, or
    completed again with another next due date) creates nothing: the latest completion's
    event does. Safe to call any number of times, concurrently too: the unique constraints
    on (series, occurrence) and on the parent make a second spawn fail, never duplicate.
    """
    task = (
        # Lock the task row only: PostgreSQL refuses FOR UPDATE on the nullable side of the
        # outer joins to series and category. The series is locked on its own below.
        Task.objects.select_for_update(of=("self",))
        .select_related("series", "category", "user")
        .filter(pk=task_id)
        .first()
    )
    if task is None or not task.completed or task.series_id is None:
        return None
    if task.next_occurrence_at != next_due:
        logger.info("stale completion ignored task_id=%s next_due=%s", task.pk, next_due)
        return None
    if Task.objects.filter(parent=task, series_id=task.series_id).exists():
        return None  # spawned by an earlier completion: complete, reopen, complete again
    series = RecurrenceSeries.objects.select_for_update().get(pk=task.series_id)
    task.series = series
    if series.ended:
        return None
    if next_due is None:
        series_end(series)
        logger.info("series ended series=%s task_id=%s", series.pk, task.pk)
        return None
    if series.anchor is None:  # a series without a due date anchors on its first completion
        series.anchor = to_local_naive(task.completed_at, series.timezone).replace(microsecond=0)
        series.save(update_fields=["anchor_date", "anchor_time"])
    _cache_tags(task, list(task.tags.all()))  # read once: for the instance and the event
    try:
        # The savepoint a clash rolls back to; the service itself runs without one of its own
        # (``__wrapped__``: already atomic, and quiet, in this service).
        with transaction.atomic():
            instance = task_create.__wrapped__(
                user=task.user,
                title=task.title,
                description=task.description,
                priority=task.priority,
                due_date=next_due,
                timezone_name=series.timezone,
                category=task.category,
                tags=[tag.name for tag in task.tags.all()],
                recurrence_rule=task.recurrence_rule,
                recurrence_type=task.recurrence_type,
                recurrence_interval=task.recurrence_interval,
                recurrence_mode=task.recurrence_mode,
                remind_before=_reminder_offset(task),
                parent=task,
                series=series,
                occurrence=next_due,
            )
    except IntegrityError:
        logger.info("next instance already exists task_id=%s series=%s", task.pk, series.pk)
        return None
    series_count_instance(series)
    triggered = Change(task.last_triggered_at, timezone.now())
    task.last_triggered_at = triggered.new
    task.save(update_fields=["last_triggered_at", "updated_at"])
    _emit_task_changes(task, {"last_triggered_at": triggered})
    logger.info("spawned task_id=%s from=%s due=%s", instance.pk, task.pk, next_due.isoformat())
    return instance


def _reminder_offset(task: Task) -> dt.timedelta | None:
    """The next instance's reminder: the same wall-clock offset before its due date."""
    if task.remind_before is not None:
        return task.remind_before
    if task.remind_at is not None and task.due_date is not None:
        return to_local_naive(task.due_date, task.timezone) - to_local_naive(
            task.remind_at, task.timezone
        )
    return None


@task_service
def task_reminder_sent(*, task_id: int, remind_at: dt.datetime) -> bool:
    """Show on the task that its reminder for ``remind_at`` was sent (``reminder_sent``).

    A conditional UPDATE: False, and no event, when the task has another reminder time by
    now or already shows it sent; otherwise ``task.updated`` tells live clients.
    """
    marked = Task.objects.filter(pk=task_id, remind_at=remind_at, reminder_sent=False).update(
        reminder_sent=True, updated_at=timezone.now()
    )
    if not marked:
        return False
    task = Task.objects.get(pk=task_id)
    _emit_task_changes(task, {"reminder_sent": Change(False, True)})
    return True


@task_service
def task_quick_add(*, user, text: str, now: dt.datetime | None = None) -> Task:
    """Create a task from one line ("Call mum tomorrow 6pm #Family p1"; see tasks.quickadd).

    An unknown ``#category`` is created with the task. Every error is reported on ``text``.
    """
    parsed = parse_quick_add(text, user=user, now=now)
    parsed.validate()
    fields = parsed.task_fields()
    try:
        if parsed.category_is_new:
            fields["category"] = category_create(user=user, name=parsed.category_name)
        return task_create(user=user, **fields)
    except ValidationError as exc:
        raise ValidationError({"text": exc.messages}) from exc


# --- categories ---------------------------------------------------------------------------


def _save_unique(instance, *, field: str) -> None:
    """``full_clean`` then save, reporting a name clash as a field error, never a 500."""
    try:
        instance.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict
        if "__all__" in errors:
            errors.setdefault(field, []).extend(errors.pop("__all__"))
        raise ValidationError(errors) from exc
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:  # lost a race against a concurrent create
        raise ValidationError({field: "This name is already taken."}) from exc


@task_service
def category_create(*, user, name: str, color: str | None = None) -> Category:
    category = Category(user=user, name=(name or "").strip())
    if color is not None:
        category.color = color
    _save_unique(category, field="name")
    return category


@task_service
def category_update(*, category: Category, data: Mapping[str, Any]) -> Category:
    if "name" in data:
        category.name = (data["name"] or "").strip()
    if "color" in data:
        category.color = data["color"]
    _save_unique(category, field="name")
    return category


def _emit_updated_for(task_ids: list[int], changes_for: Any) -> None:
    """``task.updated`` for tasks changed as a side effect (a category or tag went away)."""
    for task in Task.objects.filter(pk__in=task_ids).with_relations():
        changes = changes_for(task)
        emit(
            EventType.TASK_UPDATED,
            task_event(task, changes=changes_data(changes)),
            partition_key=task.pk,
        )


def _forget_category_in_views(*, user_id: int, category_id: int) -> None:
    """Drop ``category`` from the user's saved views that name this category."""
    for view in SavedView.objects.filter(user_id=user_id, filters__has_key="category"):
        named = str(view.filters["category"]).strip()
        if named.isdigit() and int(named) == category_id:
            view.filters = {k: v for k, v in view.filters.items() if k != "category"}
            view.save(update_fields=["filters"])


@task_service
def category_delete(*, category: Category) -> None:
    """Delete the category; its tasks keep existing without one (and say so in events), and
    the saved views that filter on it keep their other filters."""
    category_id = category.pk
    task_ids = list(category.tasks.values_list("pk", flat=True))
    _forget_category_in_views(user_id=category.user_id, category_id=category_id)
    category.delete()
    _emit_updated_for(task_ids, lambda task: {"category": Change(category_id, None)})


# --- tags --------------------------------------------------------------------------------


@task_service
def tag_create(*, user, name: str) -> Tag:
    tag = Tag(user=user, name=(name or "").strip())
    _check_tag_name(tag.name, field="name")
    _save_unique(tag, field="name")
    return tag


@task_service
def tag_update(*, tag: Tag, data: Mapping[str, Any]) -> Tag:
    old_name = tag.name
    if "name" in data:
        tag.name = (data["name"] or "").strip()
        _check_tag_name(tag.name, field="name")
    _save_unique(tag, field="name")
    if tag.name != old_name:
        task_ids = list(tag.tasks.values_list("pk", flat=True))

        def renamed(task: Task) -> dict[str, Change]:
            new = task.tag_names()
            old = sorted((old_name if n == tag.name else n for n in new), key=str.casefold)
            return {"tags": Change(old, new)}

        _emit_updated_for(task_ids, renamed)
    return tag


@task_service
def tag_delete(*, tag: Tag) -> None:
    """Delete the tag; the tasks that had it lose it (and say so in events)."""
    name = tag.name
    task_ids = list(tag.tasks.values_list("pk", flat=True))
    tag.delete()

    def untagged(task: Task) -> dict[str, Change]:
        new = task.tag_names()
        return {"tags": Change(sorted([*new, name], key=str.casefold), new)}

    _emit_updated_for(task_ids, untagged)


# --- saved views --------------------------------------------------------------------------

#: Paging is where the reader is, not part of a view.
_NOT_SAVED_PARAMS = frozenset({"page", "page_size", "after"})


def _clean_view_filters(*, user, filters: Any) -> dict[str, str]:
    """Query parameters the task FilterSet accepts, as strings; raises ValidationError."""
    from types import SimpleNamespace

    from .selectors import TaskFilterSet

    if not isinstance(filters, Mapping):
        raise ValidationError({"filters": "Give the filters as an object of query parameters."})
    known = set(TaskFilterSet.base_filters)
    cleaned: dict[str, str] = {}
    for key, value in filters.items():
        if key in _NOT_SAVED_PARAMS:
            continue
        if key not in known:
            raise ValidationError({"filters": f"'{key}' is not a task filter."})
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list | tuple):
            value = ",".join(str(item) for item in value)
        value = str(value).strip()
        if value:
            cleaned[key] = value
    filterset = TaskFilterSet(
        data=cleaned, queryset=Task.objects.none(), request=SimpleNamespace(user=user)
    )
    if not filterset.is_valid():
        raise ValidationError(
            {
                "filters": [
                    f"{name}: {message}"
                    for name, messages in filterset.errors.items()
                    for message in messages
                ]
            }
        )
    return cleaned


@task_service
def saved_view_create(*, user, name: str, filters: Mapping[str, Any]) -> SavedView:
    view = SavedView(
        user=user,
        name=(name or "").strip(),
        filters=_clean_view_filters(user=user, filters=filters),
    )
    _save_unique(view, field="name")
    return view


@task_service
def saved_view_update(*, view: SavedView, data: Mapping[str, Any]) -> SavedView:
    if "name" in data:
        view.name = (data["name"] or "").strip()
    if "filters" in data:
        view.filters = _clean_view_filters(user=view.user, filters=data["filters"])
    _save_unique(view, field="name")
    return view


@task_service
def saved_view_delete(*, view: SavedView) -> None:
    view.delete()


# --- profile -----------------------------------------------------------------------------


@task_service
def profile_update(*, user, data: Mapping[str, Any]) -> Profile:
    profile = profile_get(user=user)
    for field in ("timezone", "reminders_enabled"):
        if field in data:
            setattr(profile, field, data[field])
    profile.full_clean()
    profile.save()
    if "email" in data:
        user.email = data["email"]
        user.full_clean(exclude=["password"])
        user.save(update_fields=["email"])
    return profile


# --- accounts ----------------------------------------------------------------------------


@task_service
def user_register(*, username: str, email: str, password: str):
    """Create a user with a profile; the password is checked by the caller's validators."""
    from django.contrib.auth import get_user_model

    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=username, email=email, password=password
            )
    except IntegrityError as exc:
        raise ValidationError({"username": "This username is taken."}) from exc
    Profile.objects.create(user=user)
    return user


# --- API tokens ---------------------------------------------------------------------------

#: Tokens a user may hold that have not expired; each creation also clears their expired ones,
#: so the rows kept per user stay bounded.
MAX_API_TOKENS_PER_USER = 50
#: The furthest a token's expiry may be set; "never" is the other choice.
MAX_API_TOKEN_DAYS = 365
#: ``last_used_at`` is written at most this often per token, not on every request.
API_TOKEN_LAST_USED_INTERVAL = dt.timedelta(minutes=1)
#: New secrets start with this, so a leaked one is recognisable (e.g. by secret scanners).
API_TOKEN_SECRET_PREFIX = "tdl_"
#: The characters of a secret shown to tell tokens apart: the marker and 8 random ones.
API_TOKEN_SHOWN_CHARACTERS = len(API_TOKEN_SECRET_PREFIX) + 8


def _api_token_expiry(
    expires_at: dt.datetime | None, expires_in_days: int | None, now: dt.datetime
) -> dt.datetime | None:
    if expires_at is not None and expires_in_days is not None:
        raise ValidationError({"expires_at": "Give expires_at or expires_in_days, not both."})
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_API_TOKEN_DAYS:
            raise ValidationError(
                {"expires_in_days": f"Choose between 1 and {MAX_API_TOKEN_DAYS} days."}
            )
        return now + dt.timedelta(days=expires_in_days)
    if expires_at is not None:
        if expires_at <= now:
            raise ValidationError({"expires_at": "The expiry must be in the future."})
        if expires_at > now + dt.timedelta(days=MAX_API_TOKEN_DAYS):
            raise ValidationError(
                {"expires_at": f"The expiry can be at most {MAX_API_TOKEN_DAYS} days away."}
            )
    return expires_at


@task_service
def api_token_create(
    *,
    user,
    name: str,
    expires_at: dt.datetime | None = None,
    expires_in_days: int | None = None,
) -> tuple[ApiToken, str]:
    """A new named token for ``user`` and its secret, which is not stored (only its digest)
    and so can be shown this once. Neither expiry given: the token never expires."""
    now = timezone.now()
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name."})
    expires_at = _api_token_expiry(expires_at, expires_in_days, now)
    from django.contrib.auth import get_user_model

    # Lock the user so two concurrent creations cannot both pass the count.
    get_user_model().objects.select_for_update().only("pk").get(pk=user.pk)
    tokens = ApiToken.objects.filter(user=user)
    tokens.filter(expires_at__lte=now).delete()
    if tokens.count() >= MAX_API_TOKENS_PER_USER:
        raise ValidationError(
            {
                "name": f"You already have {MAX_API_TOKENS_PER_USER} tokens, the most allowed: "
                "revoke one you no longer use."
            }
        )
    secret = API_TOKEN_SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[:API_TOKEN_SHOWN_CHARACTERS],
        digest=ApiToken.digest_of(secret),
        created_at=now,
        expires_at=expires_at,
    )
    return token, secret


@task_service
def api_token_revoke(*, token: ApiToken) -> None:
    """Delete the token: requests that present it are refused from now on."""
    token.delete()


def api_token_mark_used(*, token: ApiToken) -> None:
    """Record that the token was just used, unless that was recorded less than
    ``API_TOKEN_LAST_USED_INTERVAL`` ago: a write a minute at most, not one per request.
    Not a ``@task_service``: one UPDATE, no event, and most requests write nothing at all."""
    now = timezone.now()
    stale = now - API_TOKEN_LAST_USED_INTERVAL
    if token.last_used_at is not None and token.last_used_at > stale:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
    token.last_used_at = now


# --- calendar feed (issue 13) -----------------------------------------------------------------

#: Characters of a feed secret kept in clear, to tell one URL from the next.
FEED_TOKEN_SHOWN_CHARACTERS = 6


@task_service
def feed_token_create(*, user) -> tuple[FeedToken, str]:
    """A new secret for the user's calendar feed, replacing (so revoking) the one before;
    only its digest is stored, so the secret can be shown this once."""
    secret = secrets.token_urlsafe(32)
    FeedToken.objects.filter(user=user).delete()
    token = FeedToken.objects.create(
        user=user, prefix=secret[:FEED_TOKEN_SHOWN_CHARACTERS], digest=FeedToken.digest_of(secret)
    )
    return token, secret


@task_service
def feed_token_revoke(*, user) -> None:
    """Delete the user's feed secret (if any): its URL answers 404 from now on."""
    FeedToken.objects.filter(user=user).delete()


# --- calendar import (.ics files) ----------------------------------------------------------
# The mapping is docs/calendar-import.md's table; keep the two in step.

#: The largest .ics file an import reads, and the most to-dos and events it takes.
MAX_ICAL_BYTES = 1_000_000
MAX_ICAL_ITEMS = 500

#: RFC 5545 PRIORITY (1 highest ... 9 lowest; 0 undefined) to Tideline's four priorities.
ICAL_PRIORITIES = {
    **dict.fromkeys((1, 2), Priority.URGENT),
    **dict.fromkeys((3, 4), Priority.HIGH),
    **dict.fromkeys((5, 6), Priority.MEDIUM),
    **dict.fromkeys((7, 8, 9), Priority.LOW),
}


@dataclass(frozen=True)
class ImportedTask:
    index: int
    id: int
    title: str
    notes: list[str]


@dataclass(frozen=True)
class AlreadyImported:
    """An item whose UID the user already has a task for: that task's id."""

    index: int
    uid: str
    summary: str
    id: int


@dataclass(frozen=True)
class SkippedItem:
    index: int
    uid: str
    summary: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    created: list[ImportedTask]
    already_imported: list[AlreadyImported]
    skipped: list[SkippedItem]


class _Skip(Exception):
    """An item that is not imported, and why."""


class _TolerantTodo(icalendar.Todo):
    ignore_exceptions = True  # as icalendar reads a VEVENT: an unreadable value is a vBroken


class _TolerantAlarm(icalendar.Alarm):
    ignore_exceptions = True


class _TolerantTimezone(icalendar.Timezone):
    ignore_exceptions = True


class _TolerantStandard(icalendar.TimezoneStandard):
    ignore_exceptions = True


class _TolerantDaylight(icalendar.TimezoneDaylight):
    ignore_exceptions = True


class _ImportParser(CalendarIcalParser):
    def handle_end_component(self, vals: str) -> None:
        """icalendar's, except that a file's VTIMEZONE never goes into icalendar's cache of
        time zones, which the whole process shares: one user's file must not decide how
        another user's file reads a TZID, nor grow that cache. A TZID that is not a known
        zone name (IANA or Windows) stays unknown: the items using it keep their wall-clock
        time in the profile's zone, with a note."""
        if vals.upper() != "VTIMEZONE":
            super().handle_end_component(vals)
            return
        if not self._stack:
            raise ValueError("END encountered without an accompanying BEGIN!")
        component = self._stack.pop()
        if self._stack:
            self._stack[-1].add_component(component)
        else:
            self._components.append(component)


class _ImportedCalendar(icalendar.Calendar):
    """A calendar whose to-dos, events, alarms and time zones keep an unreadable value as
    ``vBroken`` (listed in the component's ``errors``) instead of refusing the whole file,
    so one bad item is skipped and the others imported; a VTIMEZONE that cannot be built
    leaves its TZID unknown (the items using it are read in the profile's zone, with a
    note). The calendar's own lines are read strictly."""

    _components_factory = None

    @classmethod
    def _get_component_factory(cls):
        if cls._components_factory is None:
            factory = ComponentFactory()
            for tolerant in (
                _TolerantTodo,
                _TolerantAlarm,
                _TolerantTimezone,
                _TolerantStandard,
                _TolerantDaylight,
            ):
                factory.add_component_class(tolerant)
            cls._components_factory = factory
        return cls._components_factory

    @classmethod
    def _get_ical_parser(cls, st: str | bytes) -> CalendarIcalParser:
        return _ImportParser(st, cls._get_component_factory(), cls.types_factory)


#: An item's values without which it cannot be read as a task: an unreadable one skips it.
#: An RRULE icalendar cannot read goes to the API's rule check as written, which skips the
#: item with its precise reason. Any other unreadable value is left out: PRIORITY and DTEND
#: with a note, an alarm's TRIGGER with the alarm's note, what Tideline never imports (GEO,
#: EXDATE...) without one.
ICAL_ESSENTIAL = ("DTSTART", "DUE", "RECURRENCE-ID")
#: The longest UID kept (``Task.ical_uid``); a longer one is imported without it.
MAX_ICAL_UID = 255


@task_service
def tasks_import_ical(*, user, data: bytes) -> ImportReport:
    """Create a task from each VTODO and VEVENT of an iCalendar file, once.

    The file as a whole must be iCalendar, at most MAX_ICAL_BYTES and MAX_ICAL_ITEMS items
    (a ValidationError on ``file`` otherwise). Each item is created by ``task_create`` in its
    own savepoint, so every rule the API checks applies and each task emits its event; an
    item Tideline refuses, or with an unreadable date or rule, is skipped with the reason,
    and the others are still created. An item's UID is kept on its task (unique per user):
    an item whose UID the user already has (imported before, or the user's own feed) is
    reported as already imported, also when a concurrent import just created it.
    """
    calendar = _parse_ical(data)
    items = [c for c in calendar.subcomponents if c.name in ("VTODO", "VEVENT")]
    if len(items) > MAX_ICAL_ITEMS:
        raise ValidationError(
            {
                "file": f"The file has {len(items)} to-dos and events; import at most "
                f"{MAX_ICAL_ITEMS} at a time."
            }
        )
    profile_zone = profile_get(user=user).timezone
    held = _ical_uids_held(user=user, uids={_ical_uid(item) for item in items})
    created, already, skipped = [], [], []
    # In UID order: two imports waiting on each other's new UIDs wait in the same order, so
    # never in a deadlock (a file's duplicate UIDs keep their order: the first is created).
    numbered = sorted(enumerate(items, start=1), key=lambda pair: _ical_uid(pair[1]))
    for index, item in numbered:
        summary = str(item.get("SUMMARY", "")).strip()
        uid = _ical_uid(item)
        if uid in held and "RECURRENCE-ID" not in item:
            already.append(AlreadyImported(index=index, uid=uid, summary=summary, id=held[uid]))
            continue
        notes: list[str] = []
        try:
            fields = _ical_task_fields(item, profile_zone=profile_zone, notes=notes)
            task = task_create(user=user, ical_uid=_ical_uid_kept(uid, notes), **fields)
        except _Skip as exc:
            reason = str(exc)
        except ValidationError as exc:
            reason = _validation_reason(exc)
        except IntegrityError:  # a concurrent import created it first (one_task_per_ical_uid)
            holder = Task.objects.filter(user=user, ical_uid=uid).values_list("pk", flat=True)
            if not uid or not holder:
                raise
            held[uid] = holder[0]
            already.append(AlreadyImported(index=index, uid=uid, summary=summary, id=held[uid]))
            continue
        else:
            created.append(ImportedTask(index=index, id=task.pk, title=task.title, notes=notes))
            if task.ical_uid:
                held[uid] = task.pk  # the same UID later in the file is the same item
            continue
        skipped.append(SkippedItem(index=index, uid=uid, summary=summary, reason=reason))
    return ImportReport(
        created=sorted(created, key=_by_index),
        already_imported=sorted(already, key=_by_index),
        skipped=sorted(skipped, key=_by_index),
    )


def _ical_uid(item) -> str:
    return str(item.get("UID", "")).strip()


def _by_index(entry: ImportedTask | AlreadyImported | SkippedItem) -> int:
    return entry.index


def _ical_uids_held(*, user, uids: set[str]) -> dict[str, int]:
    """Which of ``uids`` the user already has, and the task holding each: one query.

    A UID an import stored (``Task.ical_uid``), or one the user's own feed made up for a
    task or series of theirs (``task-<id>@tideline``, ``series-<id>@tideline``)."""
    uids.discard("")
    if not uids:
        return {}
    own = {uid: feed_uid_owner(uid) for uid in uids}
    task_ids = {owner[1]: uid for uid, owner in own.items() if owner and owner[0] == "task"}
    series_ids = {owner[1]: uid for uid, owner in own.items() if owner and owner[0] == "series"}
    rows = (
        Task.objects.filter(user=user)
        .filter(Q(ical_uid__in=uids) | Q(pk__in=task_ids) | Q(series_id__in=series_ids))
        .order_by("-pk")  # a series' first instance last: it wins below
        .values_list("pk", "ical_uid", "series_id")
    )
    held: dict[str, int] = {}
    for pk, ical_uid, series_id in rows:
        for uid in (ical_uid, task_ids.get(pk), series_ids.get(series_id)):
            if uid in uids:
                held[uid] = pk
    return held


def _ical_uid_kept(uid: str, notes: list[str]) -> str | None:
    """The UID stored on the new task; None (and a note) when it cannot be kept."""
    if not uid:
        notes.append("No UID: importing this item again creates it again.")
        return None
    if len(uid) > MAX_ICAL_UID:
        notes.append(
            f"The UID is over {MAX_ICAL_UID} characters: importing this item again creates "
            "it again."
        )
        return None
    return uid


def _parse_ical(data: bytes):
    if len(data) > MAX_ICAL_BYTES:
        raise ValidationError(
            {"file": f"The file is larger than {MAX_ICAL_BYTES:,} bytes; split it first."}
        )
    try:
        calendar = _ImportedCalendar.from_ical(data)
    except Exception as exc:  # the parser's errors have no common base: any is the file's
        raise ValidationError(
            {"file": f"This is not an iCalendar (.ics) file that can be read: {exc}"[:300]}
        ) from exc
    if calendar.name != "VCALENDAR":
        raise ValidationError({"file": "This is not an iCalendar file (no VCALENDAR)."})
    return calendar


def _validation_reason(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


def _ical_task_fields(item, *, profile_zone: str, notes: list[str]) -> dict[str, Any]:
    """``task_create``'s arguments for one VTODO or VEVENT; ``_Skip`` when it has none."""
    _ical_unreadable(item, notes=notes)
    if "RECURRENCE-ID" in item:
        raise _Skip("A changed occurrence of a repeating item (RECURRENCE-ID) is not imported.")
    status = str(item.get("STATUS", "")).upper()
    if status in ("COMPLETED", "CANCELLED") or "COMPLETED" in item:
        raise _Skip(f"Already {'cancelled' if status == 'CANCELLED' else 'completed'}.")
    title = str(item.get("SUMMARY", "")).strip()
    if not title:
        raise _Skip("No SUMMARY: a task needs a title.")
    due_name = "DUE" if item.name == "VTODO" and "DUE" in item else "DTSTART"
    due_date, zone = _ical_due(item, due_name, profile_zone=profile_zone, notes=notes)
    fields: dict[str, Any] = {
        "title": title,
        "description": str(item.get("DESCRIPTION", "")),
        "priority": _ical_priority(item),
        "due_date": due_date,
        "timezone_name": zone,
        "tags": _ical_categories(item),
    }
    rules = item.get("RRULE")
    if isinstance(rules, list):
        raise _Skip("More than one RRULE: Tideline repeats a task by one rule.")
    if rules is not None:
        fields["recurrence_rule"] = rules.to_ical().decode()
        if not fields["recurrence_rule"].strip():
            raise _Skip("The RRULE is empty.")
    if "EXDATE" in item or "RDATE" in item:
        notes.append("EXDATE and RDATE are not imported: the series follows its RRULE alone.")
    fields.update(_ical_reminder(item, due_name, due_date, zone, notes=notes))
    return fields


def _ical_unreadable(item, *, notes: list[str]) -> None:
    """Skip the item (``_Skip``) when a value in ICAL_ESSENTIAL cannot be read; note each
    other unreadable value Tideline reads (it is then left out)."""
    errors = [(name, error) for name, error in item.errors if name in ICAL_ESSENTIAL]
    if errors:
        name, error = errors[0]
        raise _Skip(f"{name} cannot be read: {error}"[:300])
    for name, error in item.errors:
        if name == "PRIORITY":
            notes.append(f"PRIORITY cannot be read ({error}): the task is medium."[:300])
        elif name == "DTEND":
            notes.append(f"DTEND cannot be read ({error}): left out."[:300])
        elif name is None:
            notes.append(f"A line cannot be read: left out ({error})."[:300])


def _ical_due(item, name: str, *, profile_zone: str, notes: list[str]):
    """The due date (None when absent) and the task's zone.

    A time with a TZID Tideline supports keeps that zone; a floating time is wall-clock time
    in the profile's zone; a UTC time, or one in a zone Tideline does not support, keeps its
    instant in the profile's zone; an all-day DATE is due that day at DEFAULT_DUE_TIME.
    """
    if name not in item:
        return None, profile_zone
    try:
        value = item.decoded(name)
    except Exception as exc:  # a vBroken value of a tolerant VEVENT
        raise _Skip(f"{name} is not a date or date-time.") from exc
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, settings.DEFAULT_DUE_TIME)
    if not isinstance(value, dt.datetime):
        raise _Skip(f"{name} is not a date or date-time.")
    try:
        validate_supported_datetime(value)
    except ValidationError as exc:
        raise _Skip(f"{name}: {' '.join(exc.messages)}") from exc
    if value.tzinfo is None:
        if "TZID" in item[name].params:
            notes.append(f"Unknown time zone {item[name].params['TZID']}: read in yours.")
        return value, profile_zone
    tzid = item[name].params.get("TZID")
    if tzid is None:  # a UTC time
        return value, profile_zone
    key = getattr(value.tzinfo, "key", None)
    if key in supported_zones():  # Windows names too (icalendar maps them to IANA's)
        return value, key
    notes.append(f"Time zone {tzid} is read as yours.")
    return value, profile_zone


def _ical_priority(item) -> str:
    try:
        return ICAL_PRIORITIES.get(int(item.get("PRIORITY", 0)), Priority.MEDIUM)
    except (TypeError, ValueError):  # unreadable: noted by _ical_unreadable
        return Priority.MEDIUM


def _ical_categories(item) -> list[str]:
    properties = item.get("CATEGORIES", [])
    if not isinstance(properties, list):
        properties = [properties]
    return [str(name) for prop in properties for name in getattr(prop, "cats", [])]


def _ical_reminder(item, due_name, due_date, zone, *, notes: list[str]) -> dict[str, Any]:
    """``remind_before`` or ``remind_at`` from the item's first VALARM with a TRIGGER."""
    alarms = [alarm for alarm in item.walk("VALARM") if "TRIGGER" in alarm]
    if not alarms:
        return {}
    if len(alarms) > 1:
        notes.append("Only the first alarm is imported: a task has one reminder.")
    alarm = alarms[0]
    try:
        trigger = alarm.decoded("TRIGGER")
    except Exception:  # a vBroken value of a tolerant VEVENT
        trigger = None
    if isinstance(trigger, dt.timedelta):
        related = alarm["TRIGGER"].params.get("RELATED", "START").upper()
        if item.name == "VEVENT":
            anchor = "DTEND" if related == "END" else "DTSTART"
        elif related == "END" or "DTSTART" not in item:
            anchor = "DUE"  # a to-do without DTSTART: RFC 5545 leaves it open; DUE is all
        else:
            anchor = "DTSTART"
        # A to-do's DTSTART equal to its DUE (as Tideline's own feed writes them) is the due.
        at_due = anchor == due_name or (
            anchor in item and due_name in item and item.decoded(anchor) == item.decoded(due_name)
        )
        if due_date is not None and at_due and trigger <= dt.timedelta(0):
            return {"remind_before": -trigger}
        notes.append("The alarm is not before the due date: not imported.")
        return {}
    if isinstance(trigger, dt.datetime) and trigger.tzinfo is not None:
        if due_date is not None and trigger > localize(due_date, zone):
            notes.append("The alarm is after the due date: not imported.")
            return {}
        return {"remind_at": trigger}
    error = dict(alarm.errors).get("TRIGGER")  # a vBroken value of a tolerant component
    notes.append(
        f"The alarm's TRIGGER cannot be read{f' ({error})' if error else ''}: not imported."
    )
    return {}
