"""The one write path for tasks, categories and tags.

Views, serializers, the admin, pages and event handlers call these functions and nothing
else to change data. Each is atomic and validates with ``full_clean()`` before saving.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from events import emit
from events.outbox import service_emitting
from events.payloads import changes_data, task_deleted_event, task_event
from events.registry import EventType
from recurrence.rules import validate_task_recurrence
from recurrence.series import next_occurrence, series_follow_edit, series_start

from .models import (
    Category,
    Priority,
    Profile,
    RecurrenceMode,
    RecurrenceType,
    SavedView,
    Tag,
    Task,
)
from .quickadd import parse_quick_add

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


@dataclass(frozen=True)
class Change:
    old: Any
    new: Any


# --- helpers -----------------------------------------------------------------------------


def profile_get(*, user) -> Profile:
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def localize(value: dt.datetime | None, tz_name: str) -> dt.datetime | None:
    """Read a naive datetime as wall-clock time in ``tz_name``; aware ones are kept."""
    if value is None or timezone.is_aware(value):
        return value
    try:
        zone = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return value  # full_clean() reports the bad time zone
    return value.replace(tzinfo=zone)


def wall_clock_minus(instant: dt.datetime, offset: dt.timedelta, tz_name: str) -> dt.datetime:
    """``instant - offset`` in local wall-clock time: "1 day before" keeps the time of day."""
    zone = zoneinfo.ZoneInfo(tz_name)
    local = instant.astimezone(zone).replace(tzinfo=None) - offset
    # fold=0 takes the first of an ambiguous time; a time in a spring gap is normalised forward.
    return local.replace(tzinfo=zone).astimezone(dt.UTC).astimezone(zone)


def _clean_title(title: str) -> str:
    return title.strip() if isinstance(title, str) else title


#: Lists of tags are written comma-separated (``?tags=a,b``, the task form), so a name
#: with a comma could never be found again.
TAG_COMMA_MESSAGE = "Tag names cannot contain commas."


def _check_tag_name(name: str, *, field: str) -> None:
    if "," in name:
        raise ValidationError({field: TAG_COMMA_MESSAGE})


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
    return list(seen.values())


def tags_resolve(*, user, names: Iterable[str]) -> list[Tag]:
    """The user's tags with these names, creating the unknown ones (case-insensitive)."""
    tags = []
    for name in _normalise_tag_names(names):
        tag = Tag.objects.filter(user=user, name__iexact=name).first()
        if tag is None:
            try:
                with transaction.atomic():
                    tag = Tag.objects.create(user=user, name=name)
            except IntegrityError:  # created concurrently by another request
                tag = Tag.objects.get(user=user, name__iexact=name)
        tags.append(tag)
    return tags


def _apply_reminder_rules(task: Task, data: Mapping[str, Any]) -> None:
    """Derive ``remind_at`` from ``remind_before``; reject giving both."""
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


def task_snapshot(task: Task) -> dict[str, Any]:
    """The values ``task_update`` compares to report exactly what changed (tags aside)."""
    values = {f: getattr(task, f) for f in TASK_EDITABLE_FIELDS if f not in ("tags", "category")}
    values["category"] = task.category_id
    values["completed_at"] = task.completed_at
    values["reminder_sent"] = task.reminder_sent
    return values


# --- tasks -------------------------------------------------------------------------------


@transaction.atomic
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
    )
    if completed:
        task.completed = True
        task.completed_at = timezone.now()
    _apply_reminder_rules(task, {"remind_at": remind_at, "remind_before": remind_before})
    validate_task_recurrence(task)
    task.full_clean()
    if series is not None:  # a spawned instance joins its series
        task.series, task.occurrence = series, occurrence
    else:
        series_start(task)
    with service_emitting():
        task.save()
        task.tags.set(tags_resolve(user=user, names=tags))
    emit(EventType.TASK_CREATED, task_event(task), partition_key=task.pk)
    return task


@transaction.atomic
def task_update(*, task: Task, data: Mapping[str, Any]) -> tuple[Task, dict[str, Change]]:
    """Apply ``data`` (a subset of TASK_EDITABLE_FIELDS) and return the exact changes."""
    unknown = set(data) - set(TASK_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "Unknown field." for name in sorted(unknown)})

    _lock_and_refresh(task)
    before = task_snapshot(task)
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
    validate_task_recurrence(task)
    task.full_clean()

    after = task_snapshot(task)
    changes = {
        name: Change(before[name], after[name]) for name in after if before[name] != after[name]
    }
    if changes:
        series_follow_edit(task, set(changes))
        if "completed" in changes and task.completed:
            # Known at once, so the complete response can show it before the spawn happens.
            task.next_occurrence_at = next_occurrence(task, completed_at=task.completed_at)
    with service_emitting():
        if changes:
            task.save()
        if "tags" in data:
            new_tags = tags_resolve(user=task.user, names=data["tags"])
            new_names = sorted((t.name for t in new_tags), key=str.casefold)
            if new_names != old_tags:
                task.tags.set(new_tags)
                changes["tags"] = Change(old_tags, new_names)
                if len(changes) == 1:
                    task.save(update_fields=["updated_at"])
    if changes:
        _emit_task_changes(task, changes)
    return task, changes


def _lock_and_refresh(task: Task) -> None:
    """Lock the row and reload it, so concurrent updates apply one after the other.

    Without this, two requests that loaded the same task would each write back every
    column, the second undoing the first (a title edit silently reopening a completion).
    """
    Task.objects.select_for_update().filter(pk=task.pk).values_list("pk").first()
    task.refresh_from_db()
    getattr(task, "_prefetched_objects_cache", {}).pop("tags", None)


def _emit_task_changes(task: Task, changes: dict[str, Change]) -> None:
    """One event per change: ``task.completed`` when it completed, else ``task.updated``."""
    completed_change = changes.get("completed")
    if completed_change is not None and completed_change.new:
        payload = task_event(task, has_recurrence=task.has_recurrence)
        emit(EventType.TASK_COMPLETED, payload, partition_key=task.pk)
    else:
        payload = task_event(task, changes=changes_data(changes))
        emit(EventType.TASK_UPDATED, payload, partition_key=task.pk)


def task_complete(*, task: Task) -> Task:
    """Mark the task completed (a no-op if it already is)."""
    if task.completed:
        return task
    task, _ = task_update(task=task, data={"completed": True})
    return task


def task_reopen(*, task: Task) -> Task:
    """Mark a completed task pending again (a no-op if it is pending)."""
    if not task.completed:
        return task
    task, _ = task_update(task=task, data={"completed": False})
    return task


@transaction.atomic
def task_delete(*, task: Task) -> None:
    task_id, user_id = task.pk, task.user_id
    with service_emitting():
        task.delete()
    emit(
        EventType.TASK_DELETED,
        task_deleted_event(task_id=task_id, user_id=user_id),
        partition_key=task_id,
    )


@transaction.atomic
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


@transaction.atomic
def category_create(*, user, name: str, color: str | None = None) -> Category:
    category = Category(user=user, name=(name or "").strip())
    if color is not None:
        category.color = color
    _save_unique(category, field="name")
    return category


@transaction.atomic
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


@transaction.atomic
def category_delete(*, category: Category) -> None:
    """Delete the category; its tasks keep existing without one (and say so in events), and
    the saved views that filter on it keep their other filters."""
    category_id = category.pk
    task_ids = list(category.tasks.values_list("pk", flat=True))
    _forget_category_in_views(user_id=category.user_id, category_id=category_id)
    with service_emitting():
        category.delete()
    _emit_updated_for(task_ids, lambda task: {"category": Change(category_id, None)})


# --- tags --------------------------------------------------------------------------------


@transaction.atomic
def tag_create(*, user, name: str) -> Tag:
    tag = Tag(user=user, name=(name or "").strip())
    _check_tag_name(tag.name, field="name")
    _save_unique(tag, field="name")
    return tag


@transaction.atomic
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


@transaction.atomic
def tag_delete(*, tag: Tag) -> None:
    """Delete the tag; the tasks that had it lose it (and say so in events)."""
    name = tag.name
    task_ids = list(tag.tasks.values_list("pk", flat=True))
    with service_emitting():
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


@transaction.atomic
def saved_view_create(*, user, name: str, filters: Mapping[str, Any]) -> SavedView:
    view = SavedView(
        user=user,
        name=(name or "").strip(),
        filters=_clean_view_filters(user=user, filters=filters),
    )
    _save_unique(view, field="name")
    return view


@transaction.atomic
def saved_view_update(*, view: SavedView, data: Mapping[str, Any]) -> SavedView:
    if "name" in data:
        view.name = (data["name"] or "").strip()
    if "filters" in data:
        view.filters = _clean_view_filters(user=view.user, filters=data["filters"])
    _save_unique(view, field="name")
    return view


@transaction.atomic
def saved_view_delete(*, view: SavedView) -> None:
    view.delete()


# --- profile -----------------------------------------------------------------------------


@transaction.atomic
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


@transaction.atomic
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


@transaction.atomic
def api_token_create(*, user, replace: bool = False) -> Token:
    """The user's API token, created if missing; ``replace`` issues a new key and the old
    one stops working at once."""
    if replace:
        Token.objects.filter(user=user).delete()
    token, _ = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def api_token_revoke(*, user) -> None:
    """Delete the user's API token (if any): requests that present it are refused."""
    Token.objects.filter(user=user).delete()
