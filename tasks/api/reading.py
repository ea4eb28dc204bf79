"""Tasks as ``GET /api/tasks/`` and ``GET /api/tasks/{id}/`` show them, read as plain rows.

``TaskSerializer`` stays the documented schema and validates writes, but reading through it
runs a field object per value. Here a page is ``values()`` rows of the columns shown and one
more query for the page's tags, turned into the same dicts by one function
(``tests/tasks/test_task_representation.py`` renders varied tasks both ways and compares the
bytes).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Iterable, Sequence
from types import SimpleNamespace

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connections, router
from django.db.models import F, OuterRef, QuerySet
from django.db.models.functions import Lower

from recurrence.describe import describe
from recurrence.series import effective_rule
from todo_project.compiled_reads import AnyOf, CompiledRead

from ..models import Task
from .durations import iso_duration

#: The columns the API shows, nothing else (no join: the category is its id).
TASK_COLUMNS = (
    "id",
    "title",
    "description",
    "completed",
    "completed_at",
    "priority",
    "due_date",
    "timezone",
    "category_id",
    "recurrence_rule",
    "recurrence_type",
    "recurrence_interval",
    "recurrence_mode",
    "remind_at",
    "remind_before",
    "reminder_sent",
    "next_occurrence_at",
    "last_triggered_at",
    "parent_id",
    "series_id",
    "occurrence",
    "created_at",
    "updated_at",
)


def _tag_links() -> QuerySet:
    """Task-tag links in the order ``Tag``'s default ordering gives (the name lower-cased as
    the database lower-cases it, then the id), as the prefetch of ``with_relations`` read."""
    return Task.tags.through.objects.order_by(Lower("tag__name"), "tag_id")


def task_rows(queryset: QuerySet[Task]) -> QuerySet[dict]:
    """``queryset`` (filtered and sorted) as rows of ``TASK_COLUMNS``.

    The tags are read in a second query for the whole page (``tag_names_by_task``): an array
    subquery per row in the page's query made PostgreSQL join each task's links to the whole
    tag table (a hash join, 0.12 ms a row: 6 ms for 50 rows against 0.5 ms for one query)."""
    return queryset.values(*TASK_COLUMNS)


def _task_row(user_id: int, task_id: int) -> QuerySet[dict]:
    """The task's row; on PostgreSQL with its tag names (``tag_names``) as an array: one
    round trip instead of two (elsewhere ``tag_names_by_task`` reads them)."""
    rows = Task.objects.filter(user_id=user_id, pk=task_id).order_by()
    if connections[router.db_for_read(Task)].vendor == "postgresql":
        # A task carries only its owner's tags (as in tag_names_by_task).
        links = _tag_links().filter(task_id=OuterRef("pk"), tag__user_id=OuterRef("user_id"))
        links = links.values("tag__name")
        return rows.values(*TASK_COLUMNS, tag_names=ArraySubquery(links))
    return task_rows(rows)


#: A detail's read, compiled once per thread (todo_project.compiled_reads): building the 23
#: columns' query cost as much as PostgreSQL answering it by primary key.
_TASK_ROW = CompiledRead(_task_row, user_id=int, task_id=int)

#: Task ids are ``BigAutoField``s: a larger number is no task (as the ORM's lookup answers).
_LARGEST_TASK_ID = 2**63 - 1


def task_representation(*, user, task_id: int) -> dict | None:
    """``TaskSerializer(task).data`` of ``user``'s task ``task_id``, or None when they have
    no such task: one query on PostgreSQL, the row then its tags elsewhere."""
    if not 0 < task_id <= _LARGEST_TASK_ID:
        return None
    alias = router.db_for_read(Task)
    rows = _TASK_ROW.rows(using=alias, user_id=user.pk, task_id=task_id)
    if not rows:
        return None
    (row,) = rows
    tags = row.get("tag_names")
    if tags is None:
        tags = tag_names_by_task([task_id], owner=user).get(task_id, [])
    return _representation(row, tags)


def _page_tag_names(task_ids: list[int], owner_id: int) -> QuerySet[dict]:
    links = _tag_links().filter(AnyOf(F("task_id"), task_ids), tag__user_id=owner_id)
    return links.values("task_id", "tag__name")


#: A page's tags: the ids as one parameter (``AnyOf``), so the statement is compiled once
#: (``__in`` writes one placeholder per id, a new statement for every page length).
_PAGE_TAG_NAMES = CompiledRead(_page_tag_names, task_ids=list, owner_id=int)


def tag_names_by_task(task_ids: Sequence[int], *, owner) -> dict[int, list[str]]:
    """Each of ``owner``'s tasks' tag names (``_tag_links``' order): one query.

    A task carries only its owner's tags; naming the owner lets PostgreSQL read their dozen
    tags by index instead of hashing every user's (0.44 -> 0.21 ms a page at 1,200 tags)."""
    if not task_ids:
        return {}
    alias = router.db_for_read(Task)
    links = _PAGE_TAG_NAMES.rows(using=alias, task_ids=list(task_ids), owner_id=owner.pk)
    names: dict[int, list[str]] = {}
    for link in links:
        names.setdefault(link["task_id"], []).append(link["tag__name"])
    return names


def task_representations(rows: Iterable[dict], *, owner) -> list[dict]:
    """``TaskSerializer(task).data`` of each row (``task_rows``) of ``owner``'s tasks, with
    its tags."""
    rows = list(rows)
    tags = tag_names_by_task([row["id"] for row in rows], owner=owner)
    return [_representation(row, tags.get(row["id"], [])) for row in rows]


@functools.lru_cache(maxsize=1024)
def _recurrence_description(rule: str, kind: str, interval: int) -> str:
    task = SimpleNamespace(recurrence_rule=rule, recurrence_type=kind, recurrence_interval=interval)
    effective = effective_rule(task)
    return describe(effective) if effective else ""


def _local(value: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str | None:
    """DRF's ISO 8601 of an instant in the task's own zone: ``+00:00`` written ``Z``."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _representation(row: dict, tags: list[str]) -> dict:
    zone = zoneinfo.ZoneInfo(row["timezone"])
    remind_before = row["remind_before"]
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "completed": row["completed"],
        "completed_at": _local(row["completed_at"], zone),
        "priority": row["priority"],
        "due_date": _local(row["due_date"], zone),
        "timezone": row["timezone"],
        "category": row["category_id"],
        "tags": tags,
        "recurrence_rule": row["recurrence_rule"],
        "recurrence_type": row["recurrence_type"],
        "recurrence_interval": row["recurrence_interval"],
        "recurrence_mode": row["recurrence_mode"],
        "remind_at": _local(row["remind_at"], zone),
        "remind_before": None if remind_before is None else iso_duration(remind_before),
        "reminder_sent": row["reminder_sent"],
        "next_occurrence_at": _local(row["next_occurrence_at"], zone),
        "last_triggered_at": _local(row["last_triggered_at"], zone),
        "parent": row["parent_id"],
        "series": row["series_id"],
        "occurrence": _local(row["occurrence"], zone),
        "recurrence_description": _recurrence_description(
            row["recurrence_rule"], row["recurrence_type"], row["recurrence_interval"]
        ),
        "created_at": _local(row["created_at"], zone),
        "updated_at": _local(row["updated_at"], zone),
    }
