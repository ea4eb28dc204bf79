"""The safety net: task changes that bypass ``tasks.services`` still become events.

A save, delete or tag change made outside the services (``manage.py shell``, a data fix,
third-party code) writes the event a service would have written: ``task.created``,
``task.updated`` with the changes these receivers can see, or ``task.deleted``, in the
same transaction as the change. They write outbox rows only: no network I/O in a signal.

A service emits its own, exact event, so the net must stay quiet while one runs. That is
not left to each service to remember: every writing service in ``tasks.services`` is
declared with ``@task_service`` (its atomic block and this silence in one decorator), and
``tests/tasks/test_services.py`` fails on a public service declared without it.

``TasksConfig.ready()`` connects the receivers (``connect()``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from events import emit
from events.payloads import changes_data, task_deleted_event, task_event
from events.registry import EventType

from .models import Task

_service_depth: contextvars.ContextVar[int] = contextvars.ContextVar(
    "tasks_service_depth", default=0
)


@contextlib.contextmanager
def services_writing() -> Iterator[None]:
    """While a service runs: it emits its own event, so the safety net stays quiet."""
    token = _service_depth.set(_service_depth.get() + 1)
    try:
        yield
    finally:
        _service_depth.reset(token)


def _in_service() -> bool:
    return _service_depth.get() > 0


def connect() -> None:
    """Connect the safety-net receivers (idempotent: each has a ``dispatch_uid``)."""
    pre_save.connect(remember_task_before_save, sender=Task, dispatch_uid="tasks.task_pre_save")
    post_save.connect(task_saved_outside_services, sender=Task, dispatch_uid="tasks.task_post_save")
    post_delete.connect(
        task_deleted_outside_services, sender=Task, dispatch_uid="tasks.task_post_delete"
    )
    m2m_changed.connect(
        task_tags_changed_outside_services,
        sender=Task.tags.through,
        dispatch_uid="tasks.task_tags_changed",
    )


def remember_task_before_save(sender, instance: Task, raw=False, **kwargs) -> None:
    if raw or _in_service() or instance.pk is None:
        return
    from .services import task_snapshot

    previous = Task.objects.filter(pk=instance.pk).first()
    instance._snapshot_before_save = task_snapshot(previous) if previous else None


def task_saved_outside_services(sender, instance: Task, created: bool, raw=False, **kwargs):
    if raw or _in_service():
        return
    from .services import Change, task_snapshot

    with transaction.atomic():
        if created:
            emit(EventType.TASK_CREATED, task_event(instance), partition_key=instance.pk)
            return
        before = getattr(instance, "_snapshot_before_save", None) or {}
        after = task_snapshot(instance)
        changes = {
            name: Change(before.get(name), value)
            for name, value in after.items()
            if before.get(name) != value
        }
        if not changes and before:
            return  # a save that changed nothing publishes nothing
        emit(
            EventType.TASK_UPDATED,
            task_event(instance, changes=changes_data(changes)),
            partition_key=instance.pk,
        )


def task_deleted_outside_services(sender, instance: Task, **kwargs) -> None:
    if _in_service():
        return
    with transaction.atomic():
        emit(
            EventType.TASK_DELETED,
            task_deleted_event(task_id=instance.pk, user_id=instance.user_id),
            partition_key=instance.pk,
        )


def task_tags_changed_outside_services(sender, instance, action, reverse, pk_set, **kwargs):
    """Tags changed from either side (``task.tags.add(tag)`` or ``tag.tasks.add(task)``)."""
    if _in_service():
        return
    if action in ("pre_add", "pre_remove", "pre_clear"):
        tasks = _affected_tasks(instance, reverse, pk_set, action)
        instance._tags_before_change = {task.pk: task.tag_names() for task in tasks}
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    from .services import Change

    before = getattr(instance, "_tags_before_change", {})
    with transaction.atomic():
        for task in Task.objects.filter(pk__in=before):
            old, new = before[task.pk], task.tag_names()
            if old == new:
                continue
            emit(
                EventType.TASK_UPDATED,
                task_event(task, changes=changes_data({"tags": Change(old, new)})),
                partition_key=task.pk,
            )


def _affected_tasks(instance, reverse: bool, pk_set, action: str) -> list[Task]:
    if not reverse:
        return [instance]
    if action == "pre_clear":
        return list(instance.tasks.all())
    return list(Task.objects.filter(pk__in=pk_set or ()))
