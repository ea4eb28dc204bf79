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
import threading
import zoneinfo
from collections.abc import Iterable, Sequence
from types import SimpleNamespace

from django.db import router
from django.db.models import QuerySet
from django.db.models.functions import Lower

from recurrence.describe import describe
from recurrence.series import effective_rule

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


_built = threading.local()


def user_task_rows(user) -> QuerySet[dict]:
    """``task_rows`` of all of ``user``'s tasks, in no useful order: for one task by id.

    Building the ``values()`` query of 23 columns costs about a third of a detail's query
    (0.24 of 0.92 ms at a million tasks), so each thread builds it once per database and each
    request clones it with its user. Only the unevaluated query is kept, never rows; one per
    thread because compiling a query briefly changes it (its aliases' reference counts).
    """
    alias = router.db_for_read(Task)
    built = getattr(_built, "rows", None)
    if built is None:
        built = _built.rows = {}
    if alias not in built:
        built[alias] = task_rows(Task.objects.using(alias))
    return built[alias].for_user(user)


def tag_names_by_task(task_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each task's tag names (``_tag_links``' order): one query."""
    if not task_ids:
        return {}
    links = _tag_links().filter(task_id__in=task_ids).values_list("task_id", "tag__name")
    names: dict[int, list[str]] = {}
    for task_id, name in links:
        names.setdefault(task_id, []).append(name)
    return names


def task_representations(rows: Iterable[dict]) -> list[dict]:
    """``TaskSerializer(task).data`` of each row (``task_rows``), with its tags."""
    rows = list(rows)
    tags = tag_names_by_task([row["id"] for row in rows])
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
