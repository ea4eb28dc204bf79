"""Safety net for saves that bypass ``tasks.services`` (the shell, third-party code).

Services emit their own event and mark the save (``service_emitting``), so these receivers
stay quiet for them. They only write outbox rows: no network I/O happens in a signal.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from tasks.models import Task

from .outbox import emit, service_is_emitting
from .payloads import changes_data, task_deleted_event, task_event
from .registry import EventType


@receiver(pre_save, sender=Task, dispatch_uid="events.task_pre_save")
def remember_task_before_save(sender, instance: Task, raw=False, **kwargs) -> None:
    if raw or service_is_emitting() or instance.pk is None:
        return
    from tasks.services import task_snapshot

    previous = Task.objects.filter(pk=instance.pk).first()
    instance._snapshot_before_save = task_snapshot(previous) if previous else None


@receiver(post_save, sender=Task, dispatch_uid="events.task_post_save")
def task_saved_outside_services(sender, instance: Task, created: bool, raw=False, **kwargs):
    if raw or service_is_emitting():
        return
    from tasks.services import Change, task_snapshot

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


@receiver(post_delete, sender=Task, dispatch_uid="events.task_post_delete")
def task_deleted_outside_services(sender, instance: Task, **kwargs) -> None:
    if service_is_emitting():
        return
    with transaction.atomic():
        emit(
            EventType.TASK_DELETED,
            task_deleted_event(task_id=instance.pk, user_id=instance.user_id),
            partition_key=instance.pk,
        )


@receiver(m2m_changed, sender=Task.tags.through, dispatch_uid="events.task_tags_changed")
def task_tags_changed_outside_services(sender, instance, action, reverse, pk_set, **kwargs):
    """Tags changed from either side (``task.tags.add(tag)`` or ``tag.tasks.add(task)``)."""
    if service_is_emitting():
        return
    if action in ("pre_add", "pre_remove", "pre_clear"):
        tasks = _affected_tasks(instance, reverse, pk_set, action)
        instance._tags_before_change = {task.pk: task.tag_names() for task in tasks}
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    from tasks.services import Change

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
