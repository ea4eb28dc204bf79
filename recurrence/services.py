"""Spawning the next instance of a recurring task, exactly once."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from events import emit
from events.payloads import changes_data, task_event
from events.registry import EventType
from tasks import services as task_services
from tasks.models import Task

from .engine import to_local_naive
from .models import RecurrenceSeries
from .series import next_occurrence, series_end

logger = logging.getLogger(__name__)


def _reminder_offset(task: Task):
    """The new instance's reminder: the same wall-clock offset before its due date."""
    if task.remind_before is not None:
        return task.remind_before
    if task.remind_at is not None and task.due_date is not None:
        return to_local_naive(task.due_date, task.timezone) - to_local_naive(
            task.remind_at, task.timezone
        )
    return None


@transaction.atomic
def spawn_next_instance(*, task_id: int) -> Task | None:
    """Create the instance after a completed one; None if there is none to create.

    Safe to call any number of times, concurrently too: the unique constraints on
    (series, occurrence) and on the parent make a second spawn fail, never duplicate.
    """
    task = (
        # Lock the task row only: PostgreSQL refuses FOR UPDATE on the nullable side of the
        # outer joins to series and category. The series is locked on its own below.
        Task.objects.select_for_update(of=("self",))
        .select_related("series", "category", "user")
        .filter(pk=task_id)
        .first()
    )
    if task is None or not task.completed or task.series is None:
        return None
    series = RecurrenceSeries.objects.select_for_update().get(pk=task.series_id)
    task.series = series
    if series.ended:
        return None
    due = next_occurrence(task, completed_at=task.completed_at)
    if due is None:
        series_end(series)
        logger.info("series ended series=%s task_id=%s", series.pk, task.pk)
        return None
    if series.anchor is None:  # a series without a due date anchors on its first completion
        series.anchor = to_local_naive(task.completed_at, series.timezone).replace(microsecond=0)
        series.save(update_fields=["anchor_date", "anchor_time"])
    try:
        with transaction.atomic():
            instance = task_services.task_create(
                user=task.user,
                title=task.title,
                description=task.description,
                priority=task.priority,
                due_date=due,
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
                occurrence=due,
            )
    except IntegrityError:
        logger.info("next instance already exists task_id=%s series=%s", task.pk, series.pk)
        return None
    RecurrenceSeries.objects.filter(pk=series.pk).update(
        instances_created=F("instances_created") + 1
    )
    _record_spawn(task, next_due=due)
    logger.info("spawned task_id=%s from=%s due=%s", instance.pk, task.pk, due.isoformat())
    return instance


def _record_spawn(task: Task, *, next_due) -> None:
    """Bookkeeping on the completed instance, published like any other change."""
    changes = {}
    now = timezone.now()
    if task.next_occurrence_at != next_due:
        changes["next_occurrence_at"] = task_services.Change(task.next_occurrence_at, next_due)
    changes["last_triggered_at"] = task_services.Change(task.last_triggered_at, now)
    Task.objects.filter(pk=task.pk).update(
        next_occurrence_at=next_due, last_triggered_at=now, updated_at=now
    )
    task.refresh_from_db()
    emit(
        EventType.TASK_UPDATED,
        task_event(task, changes=changes_data(changes)),
        partition_key=task.pk,
    )
