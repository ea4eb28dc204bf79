"""Reminders: scheduling their jobs, turning fired jobs into deliveries, sending e-mail.

A delivery moves scheduled → due → sending → sent (or skipped / missed / failed), each
step a conditional UPDATE whose row count says who won, so a job fired twice, the sweep
and the job at once, or two workers at once never send two e-mails. Network I/O (the Jobs
API, SMTP, the state store) always happens outside a transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from urllib.parse import urlparse

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from events import emit
from events.backoff import exponential_backoff
from events.jobs_client import jobs_client
from events.payloads import json_value, reminder_due_event
from events.registry import EventType
from events.runtime import runtime
from events.state import state_store
from tasks.models import Task
from tasks.selectors import user_timezone
from tasks.services import task_reminder_sent
from webhooks.models import ReminderChannel

from .models import DeliveryState, ReminderDelivery

logger = logging.getLogger(__name__)

SWEEP_JOB_NAME = "check-due-tasks"
MISSED_DETAIL = "too late to remind by the time it was found"
LAST_POLL_KEY = "notification:last_poll"


def reminder_job_name(task_id: int) -> str:
    return f"reminder-task-{task_id}"


def wants_reminder(task: Task | None) -> bool:
    return task is not None and not task.completed and task.remind_at is not None


# --- scheduling ----------------------------------------------------------------------------


@transaction.atomic
def delivery_ensure(task: Task) -> ReminderDelivery:
    """The delivery of the task's current reminder; older open ones are superseded."""
    ReminderDelivery.objects.filter(
        task=task, state__in=[DeliveryState.SCHEDULED, DeliveryState.DUE]
    ).exclude(remind_at=task.remind_at).update(
        state=DeliveryState.SKIPPED, detail="superseded by a new reminder time"
    )
    try:
        with transaction.atomic():
            delivery, _ = ReminderDelivery.objects.get_or_create(
                task=task, remind_at=task.remind_at
            )
    except IntegrityError:  # created concurrently
        delivery = ReminderDelivery.objects.get(task=task, remind_at=task.remind_at)
    if delivery.state == DeliveryState.SKIPPED and delivery.attempts == 0:
        # Skipped unsent while the task did not want it (completed, cleared, another time
        # chosen) and wanted again now (reopened, time chosen again): schedule it again. A
        # delivery skipped when sending (no address, reminders off) was claimed: it stays.
        ReminderDelivery.objects.filter(
            pk=delivery.pk, state=DeliveryState.SKIPPED, attempts=0
        ).update(state=DeliveryState.SCHEDULED, detail="")
        delivery.refresh_from_db()
    return delivery


@transaction.atomic
def delivery_record_past(task: Task, *, state: str, sent_at: dt.datetime | None = None) -> bool:
    """Record the task's current, past reminder as already over, sending nothing: ``sent``
    (at ``sent_at``, shown on the task as ``reminder_sent``) or ``missed``. For history
    such as the demo data. Conditional: False when the delivery has left ``scheduled``."""
    if state not in (DeliveryState.SENT, DeliveryState.MISSED):
        raise ValueError(f"a past reminder is sent or missed, not {state}")
    delivery = delivery_ensure(task)
    fields = (
        {"sent_at": sent_at or delivery.remind_at}
        if state == DeliveryState.SENT
        else {"detail": MISSED_DETAIL}
    )
    recorded = ReminderDelivery.objects.filter(
        pk=delivery.pk, state=DeliveryState.SCHEDULED
    ).update(state=state, **fields)
    if recorded and state == DeliveryState.SENT:
        task_reminder_sent(task_id=task.pk, remind_at=delivery.remind_at)
    return bool(recorded)


def reminder_sync(task_id: int) -> None:
    """Schedule, reschedule or delete the task's one-shot reminder job (idempotent)."""
    task = Task.objects.filter(pk=task_id).first()
    name = reminder_job_name(task_id)
    if not wants_reminder(task):
        if task is not None:
            ReminderDelivery.objects.filter(
                task=task, state__in=[DeliveryState.SCHEDULED, DeliveryState.DUE]
            ).update(state=DeliveryState.SKIPPED, detail="reminder no longer wanted")
        jobs_client().delete(name)
        logger.info("reminder job deleted name=%s", name)
        return
    delivery_ensure(task)
    jobs_client().schedule(
        name,
        due_time=task.remind_at,
        data={"task_id": task.pk, "remind_at": json_value(task.remind_at)},
    )
    logger.info("reminder job scheduled name=%s due=%s", name, json_value(task.remind_at))


def register_sweep_job() -> None:
    """Register the repeating safety-net job (overwrite: safe to repeat at every start)."""
    jobs_client().schedule(
        SWEEP_JOB_NAME, schedule=settings.REMINDER_SWEEP_SCHEDULE, data={"type": "sweep"}
    )
    logger.info("sweep job registered schedule=%s", settings.REMINDER_SWEEP_SCHEDULE)


# --- becoming due --------------------------------------------------------------------------


def missed_before(now: dt.datetime) -> dt.datetime:
    """Reminders older than this are too late to send (after an outage, or demo data)."""
    return now - dt.timedelta(minutes=settings.REMINDER_MISSED_AFTER_MINUTES)


@transaction.atomic
def delivery_mark_due(delivery: ReminderDelivery) -> bool:
    """scheduled → due, publishing ``reminder.due`` once; False if another caller won.

    A reminder found more than REMINDER_MISSED_AFTER_MINUTES late becomes missed instead,
    whoever finds it first: the job firing late or the sweep.
    """
    now = timezone.now()
    scheduled = ReminderDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.SCHEDULED)
    if delivery.remind_at < missed_before(now):
        scheduled.update(state=DeliveryState.MISSED, detail=MISSED_DETAIL)
        return False
    won = scheduled.update(state=DeliveryState.DUE, due_at=now, next_attempt_at=now)
    if won:
        task = Task.objects.get(pk=delivery.task_id)
        emit(
            EventType.REMINDER_DUE,
            reminder_due_event(task, remind_at=delivery.remind_at),
            partition_key=task.pk,
        )
    return bool(won)


@transaction.atomic
def deliveries_retry(delivery_ids: list[int]) -> int:
    """An operator's "retry now": failed or waiting deliveries are due again and announced."""
    now = timezone.now()
    retried = 0
    for delivery in ReminderDelivery.objects.filter(
        pk__in=delivery_ids, state__in=[DeliveryState.FAILED, DeliveryState.DUE]
    ).select_related("task"):
        ReminderDelivery.objects.filter(pk=delivery.pk, state=delivery.state).update(
            state=DeliveryState.DUE, due_at=now, next_attempt_at=now, attempts=0, last_error=""
        )
        emit(
            EventType.REMINDER_DUE,
            reminder_due_event(delivery.task, remind_at=delivery.remind_at),
            partition_key=delivery.task_id,
        )
        retried += 1
    return retried


def reminder_job_fired(data: dict) -> bool:
    """The reminder job's callback; a trigger for a time the task no longer wants is stale."""
    try:
        task = Task.objects.filter(pk=int(data.get("task_id"))).first()
        remind_at = parse_datetime(str(data.get("remind_at", "")))
    except (TypeError, ValueError):  # malformed job data: nothing to remind of
        logger.warning("reminder job with malformed data ignored data=%s", data)
        return False
    if not wants_reminder(task) or remind_at is None or task.remind_at != remind_at:
        logger.info("stale reminder trigger ignored data=%s", data)
        return False
    return delivery_mark_due(delivery_ensure(task))


# --- sending -------------------------------------------------------------------------------


def _claim(delivery_id: int, now: dt.datetime) -> bool:
    return bool(
        ReminderDelivery.objects.filter(pk=delivery_id, state=DeliveryState.DUE)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(state=DeliveryState.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )


def _finish(delivery_id: int, state: str, **fields) -> None:
    ReminderDelivery.objects.filter(pk=delivery_id, state=DeliveryState.SENDING).update(
        state=state, **fields
    )


def retry_delay(attempts: int) -> dt.timedelta:
    """When a reminder e-mail that failed ``attempts`` times is tried again (at most 1 h)."""
    return exponential_backoff(
        attempts, base_seconds=settings.REMINDER_RETRY_BASE_SECONDS, max_seconds=3600, jitter=False
    )


def message_id(delivery: ReminderDelivery) -> str:
    """Stable across retries, so a mail server or client can spot a repeat."""
    domain = urlparse(settings.SITE_URL).hostname or "localhost"
    return f"<reminder-{delivery.pk}-task-{delivery.task_id}@{domain}>"


def build_reminder_email(delivery: ReminderDelivery) -> EmailMultiAlternatives:
    task = delivery.task
    user = task.user
    zone = user_timezone(user)  # the zone the user's pages show times in
    context = {
        "task": task,
        "user": user,
        "due_local": task.due_date.astimezone(zone) if task.due_date else None,
        "remind_local": delivery.remind_at.astimezone(zone),
        "timezone": str(zone),
        "task_url": f"{settings.SITE_URL}/tasks/{task.pk}/",
        "site_url": settings.SITE_URL,
    }
    # The date filter shows aware date-times in the active time zone: make it the user's.
    with timezone.override(zone):
        subject = render_to_string("emails/reminder_subject.txt", context).strip()
        text = render_to_string("emails/reminder.txt", context)
        html = render_to_string("emails/reminder.html", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={"Message-ID": message_id(delivery)},
    )
    message.attach_alternative(html, "text/html")
    return message


def _skip_reason(delivery: ReminderDelivery) -> str:
    task = delivery.task
    profile = getattr(task.user, "profile", None)
    if not task.user.email:
        return "the user has no e-mail address"
    if profile is not None and not profile.reminders_enabled:
        return "the user turned reminders off"
    channels = getattr(task.user, "reminder_channels", None)
    if channels is not None and channels.channel == ReminderChannel.WEBHOOK:
        return "the user wants reminders by webhook only"
    if not wants_reminder(task) or task.remind_at != delivery.remind_at:
        return "the task no longer wants this reminder"
    return ""


def reminder_deliver(delivery_id: int) -> str:
    """Send one due reminder if this caller wins the claim; returns the resulting state."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        return "not-claimed"
    delivery = ReminderDelivery.objects.select_related(
        "task__user__profile", "task__user__reminder_channels"
    ).get(pk=delivery_id)
    reason = _skip_reason(delivery)
    if reason:
        _finish(delivery_id, DeliveryState.SKIPPED, detail=reason)
        logger.info("reminder skipped delivery=%s reason=%s", delivery_id, reason)
        return DeliveryState.SKIPPED
    try:
        build_reminder_email(delivery).send()
    except Exception as exc:  # SMTP and connection errors of every kind
        return _record_send_failure(delivery, exc)
    sent_at = timezone.now()
    with transaction.atomic():
        _finish(delivery_id, DeliveryState.SENT, sent_at=sent_at, last_error="")
        # The task shows it too, published as task.updated (reminder_sent reschedules nothing).
        task_reminder_sent(task_id=delivery.task_id, remind_at=delivery.remind_at)
    logger.info("reminder sent delivery=%s task_id=%s", delivery_id, delivery.task_id)
    _mirror_sent(delivery, sent_at)
    return DeliveryState.SENT


def _record_send_failure(delivery: ReminderDelivery, exc: Exception) -> str:
    attempts = delivery.attempts
    if attempts >= settings.REMINDER_MAX_ATTEMPTS:
        _finish(delivery.pk, DeliveryState.FAILED, last_error=str(exc)[:2000])
        logger.error("reminder failed for good delivery=%s error=%s", delivery.pk, exc)
        return DeliveryState.FAILED
    delay = retry_delay(attempts)
    _finish(
        delivery.pk,
        DeliveryState.DUE,
        next_attempt_at=timezone.now() + delay,
        last_error=str(exc)[:2000],
    )
    logger.warning(
        "reminder send failed, retry in %ss delivery=%s attempt=%s error=%s",
        int(delay.total_seconds()),
        delivery.pk,
        attempts,
        exc,
    )
    _schedule_retry(delivery.pk, delay)
    return DeliveryState.DUE


def _schedule_retry(delivery_id: int, delay: dt.timedelta) -> None:
    """With a broker a Celery task retries; otherwise the scheduler's sweep picks it up."""
    if runtime().celery:
        from .tasks import deliver_reminder

        deliver_reminder.apply_async(args=[delivery_id], countdown=delay.total_seconds())


def _mirror_sent(delivery: ReminderDelivery, sent_at: dt.datetime) -> None:
    """Mirror the sent delivery in the state store with a TTL; the database stays the truth."""
    try:
        state_store().save(
            f"reminder:task:{delivery.task_id}",
            {
                "delivery_id": delivery.pk,
                "remind_at": json_value(delivery.remind_at),
                "processed_at": json_value(sent_at),
                "user_id": delivery.task.user_id,
            },
            ttl_seconds=settings.REMINDER_STATE_TTL_SECONDS,
        )
    except Exception:
        logger.warning("could not mirror reminder in the state store", exc_info=True)


# --- the safety net ------------------------------------------------------------------------


@dataclass
class SweepResult:
    discovered: int = 0
    became_due: int = 0
    missed: int = 0
    sent: int = 0
    released: int = 0


def reminders_sweep(*, now: dt.datetime | None = None) -> SweepResult:
    """Find reminders whose job fired late or never, and send what is due.

    Reminders more than REMINDER_MISSED_AFTER_MINUTES in the past are marked missed
    instead of flooding inboxes after an outage.
    """
    now = now or timezone.now()
    result = SweepResult()
    too_old = missed_before(now)

    # Tasks whose reminder is due but has no delivery row at all, oldest first: read in the
    # order of the partial index on pending reminders (``Task.Meta.ordering`` would add a
    # sort of every due reminder before the LIMIT).
    has_delivery = ReminderDelivery.objects.filter(
        task=OuterRef("pk"), remind_at=OuterRef("remind_at")
    )
    for task in (
        Task.objects.filter(
            completed=False, reminder_sent=False, remind_at__isnull=False, remind_at__lte=now
        )
        .filter(~Exists(has_delivery))
        .order_by("remind_at")[:500]
    ):
        delivery_ensure(task)
        result.discovered += 1

    # Never due in time, or due long ago with no send attempted (the pipeline was down).
    # Deliveries being retried after an SMTP failure are not missed: they fail after
    # REMINDER_MAX_ATTEMPTS; an operator's "retry now" sets due_at anew.
    result.missed = ReminderDelivery.objects.filter(
        Q(state=DeliveryState.SCHEDULED, remind_at__lt=too_old)
        | Q(state=DeliveryState.DUE, attempts=0, due_at__lt=too_old)
    ).update(state=DeliveryState.MISSED, detail=MISSED_DETAIL)

    lease_expired = now - dt.timedelta(seconds=settings.REMINDER_SENDING_LEASE_SECONDS)
    result.released = ReminderDelivery.objects.filter(
        state=DeliveryState.SENDING, claimed_at__lt=lease_expired
    ).update(state=DeliveryState.DUE, next_attempt_at=now)

    for delivery in ReminderDelivery.objects.filter(
        state=DeliveryState.SCHEDULED, remind_at__lte=now
    ).select_related("task")[:500]:
        if wants_reminder(delivery.task) and delivery.task.remind_at == delivery.remind_at:
            result.became_due += delivery_mark_due(delivery)
        else:
            ReminderDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.SCHEDULED).update(
                state=DeliveryState.SKIPPED, detail="reminder no longer wanted"
            )

    # Due rows whose send failed and whose retry is due, or whose reminder.due event has
    # not been handled within a grace period: whoever claims first sends.
    grace = now - dt.timedelta(minutes=2)
    retry_ids = (
        ReminderDelivery.objects.filter(state=DeliveryState.DUE, next_attempt_at__lte=now)
        .filter(Q(attempts__gt=0) | Q(due_at__lt=grace))
        .values_list("pk", flat=True)[:500]
    )
    for delivery_id in list(retry_ids):
        result.sent += reminder_deliver(delivery_id) == DeliveryState.SENT

    try:
        state_store().save(LAST_POLL_KEY, {"timestamp": json_value(now)})
    except Exception:
        logger.warning("could not record the last poll in the state store", exc_info=True)
    logger.info("reminder sweep %s", result)
    return result
