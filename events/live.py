"""Live updates: the web role's consumer of ``task-updates`` and the fan-out to open pages.

Dapr delivers each event of a topic to ONE replica of an app id, while a user's pages may be
open on any process of any replica. So the consumer does not talk to connections: it appends
the change to the owner's log (``LiveUpdate``, numbered per user by ``LiveStream``) in the
transaction that records the event as processed, and wakes the streams of that user in every
process. Each open stream (``tasks.web.live``) is a cursor on that log: woken, it reads the
rows after its position and sends them. So a page misses nothing and sees nothing twice
whichever process got the event, and a reconnect resumes from ``Last-Event-ID``.

The wake-up reaches every process through the database, which they all share:

- PostgreSQL: ``NOTIFY tideline_live, '<user id>'`` in the consumer's transaction, delivered
  by PostgreSQL at commit (and never for a rolled-back one); each process LISTENs on one
  connection of its own (``Hub``'s listener thread).
- SQLite (the embedded default): an in-process wake after commit, and, for the streams of
  other processes (gunicorn's workers on SQLite), a poll of the positions of the users with
  open streams every ``LIVE_POLL_SECONDS`` (``Hub``'s poller thread).

A wake-up lost anyway (a listener reconnecting) costs latency, never an update: streams also
read the log at every heartbeat. docs/events.md, "Live updates", says why this and not a
broker topic per replica.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from .cloudevents import CloudEvent
from .models import LiveStream, LiveUpdate

logger = logging.getLogger(__name__)

#: The PostgreSQL channel the consumer notifies and every process listens on.
CHANNEL = "tideline_live"


# --- the consumer ---------------------------------------------------------------------------


def record_live_update(event: CloudEvent) -> None:
    """``web.live-updates``: append a task change to its owner's log and wake their pages.

    Runs in the transaction that records the event as processed (``events.dispatch``), so a
    duplicate delivery appends nothing; the position upsert holds the user's ``LiveStream``
    row until commit, so one user's updates commit in the order of their numbers.
    """
    user_id = event.data["user_id"]
    if not get_user_model().objects.filter(pk=user_id).exists():
        return  # the account was deleted since: no page of it is open
    seq = _take_next_position(user_id, event.id)
    LiveUpdate.objects.create(
        user_id=user_id,
        seq=seq,
        event_id=event.id,
        event_type=event.event_type,
        task_id=event.data["task_id"],
        data=_page_data(event),
    )
    _wake_after_commit(user_id)


def _take_next_position(user_id: int, event_id: str) -> int:
    table = connection.ops.quote_name(LiveStream._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, last_seq, last_event_id) VALUES (%s, 1, %s)"
            f" ON CONFLICT (user_id) DO UPDATE SET last_seq = {table}.last_seq + 1,"
            " last_event_id = excluded.last_event_id RETURNING last_seq",
            [user_id, event_id],
        )
        return cursor.fetchone()[0]


def _page_data(event: CloudEvent) -> dict[str, Any]:
    """What a page receives: the change's type, the task's id and state, the changed fields."""
    data: dict[str, Any] = {"type": str(event.event_type), "task_id": event.data["task_id"]}
    if "task_data" in event.data:
        data["task"] = event.data["task_data"]
    if "changes" in event.data:
        data["changed"] = sorted(event.data["changes"])
    return data


def _wake_after_commit(user_id: int) -> None:
    if connection.vendor == "postgresql":
        # Delivered by PostgreSQL to every listener when this transaction commits.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(user_id)])
    else:
        transaction.on_commit(lambda: hub.wake(user_id))


# --- reading the log ------------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    seq: int
    event_id: str
    event_type: str
    data: dict[str, Any]


def current_position(user_id: int) -> tuple[int, str]:
    """(sequence number, CloudEvent id) of the user's latest update; (0, "") before any."""
    row = LiveStream.objects.filter(user_id=user_id).values_list("last_seq", "last_event_id")
    return row.first() or (0, "")


def position_of(user_id: int, event_id: str) -> int | None:
    """The sequence number of one of the user's updates; None when it is not (or no longer)
    in the log: another user's event, a made-up id, or pruned."""
    return (
        LiveUpdate.objects.filter(user_id=user_id, event_id=event_id)
        .values_list("seq", flat=True)
        .first()
    )


def updates_after(user_id: int, seq: int, *, limit: int) -> list[Update]:
    """The user's updates after position ``seq``, oldest first, at most ``limit``."""
    rows = (
        LiveUpdate.objects.filter(user_id=user_id, seq__gt=seq)
        .order_by("seq")
        .values_list("seq", "event_id", "event_type", "data")[:limit]
    )
    return [Update(*row) for row in rows]


def prune(*, now: dt.datetime | None = None) -> int:
    """Delete updates older than ``LIVE_UPDATES_RETENTION_HOURS`` (``events.runtime``); a page
    that comes back later with one of their ids is told to reload its lists instead."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.LIVE_UPDATES_RETENTION_HOURS)
    deleted, _ = LiveUpdate.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- waking the open streams of this process ------------------------------------------------


class Waiter:
    """One open stream's doorbell, rung from any thread.

    A stream served synchronously (WSGI: ``runserver``, the test server) waits on
    ``wait()``; one served by the ASGI server binds its event loop first
    (``bind_loop``) and waits on ``wait_async()``.
    """

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self._rung = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rung_async: asyncio.Event | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._rung_async = asyncio.Event()
        self._loop = loop

    def ring(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._rung_async.set)
        else:
            self._rung.set()

    def wait(self, timeout: float) -> bool:
        """Block until rung or ``timeout`` seconds; True when rung (and reset)."""
        rung = self._rung.wait(timeout)
        self._rung.clear()
        return rung

    async def wait_async(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._rung_async.wait(), timeout)
        except TimeoutError:
            return False
        self._rung_async.clear()
        return True


class Hub:
    """The open streams of this process by user, and (on PostgreSQL) the thread that hears
    the consumer's notifications from every process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[int, set[Waiter]] = {}
        self._listener: threading.Thread | None = None
        self._listener_pid = 0
        self._stop = threading.Event()
        self.listening = threading.Event()

    def open(self, waiter: Waiter) -> bool:
        """Register an open stream; False when its user already has
        ``LIVE_MAX_STREAMS_PER_USER`` open in this process."""
        with self._lock:
            waiters = self._waiters.setdefault(waiter.user_id, set())
            if len(waiters) >= settings.LIVE_MAX_STREAMS_PER_USER:
                return False
            waiters.add(waiter)
        self._ensure_listener()
        return True

    def close(self, waiter: Waiter) -> None:
        with self._lock:
            waiters = self._waiters.get(waiter.user_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[waiter.user_id]

    def open_streams(self) -> int:
        with self._lock:
            return sum(len(waiters) for waiters in self._waiters.values())

    def wake(self, user_id: int) -> None:
        """Ring the open streams of ``user_id`` in this process."""
        with self._lock:
            waiters = list(self._waiters.get(user_id, ()))
        for waiter in waiters:
            waiter.ring()

    def wake_all(self) -> None:
        with self._lock:
            waiters = [waiter for group in self._waiters.values() for waiter in group]
        for waiter in waiters:
            waiter.ring()

    def _ensure_listener(self) -> None:
        with self._lock:
            alive = self._listener is not None and self._listener.is_alive()
            if alive and self._listener_pid == os.getpid():
                return
            self.listening.clear()
            self._stop.clear()
            self._listener_pid = os.getpid()
            self._listener = threading.Thread(
                target=self._listen if connection.vendor == "postgresql" else self._poll,
                name="tideline-live-listener",
                daemon=True,
            )
            self._listener.start()

    def _listen(self) -> None:
        """LISTEN on a connection of its own (never one of the pool's); reconnect after a
        failure with a growing pause, and wake every stream after each (re)connection, since
        notifications sent meanwhile are lost."""
        import psycopg

        pause = 1.0
        while not self._stop.is_set():
            try:
                with psycopg.connect(**_listener_params(), autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self.wake_all()
                    pause = 1.0
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self._heard(notify.payload)
            except Exception as exc:  # the database went away: keep trying, quietly
                self.listening.clear()
                logger.warning("live updates: listener lost the database (%s)", exc)
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
        self.listening.clear()

    def _poll(self) -> None:
        """Without NOTIFY (SQLite): read the positions of the users with streams open here
        every ``LIVE_POLL_SECONDS`` and wake those whose position moved, or that are new
        here (a change may have landed before the first look)."""
        known: dict[int, int] = {}
        self.listening.set()
        try:
            while not self._stop.wait(settings.LIVE_POLL_SECONDS):
                with self._lock:
                    users = list(self._waiters)
                try:
                    positions = dict(
                        LiveStream.objects.filter(user_id__in=users).values_list(
                            "user_id", "last_seq"
                        )
                    )
                except DatabaseError as exc:
                    logger.warning("live updates: poll failed (%s)", exc)
                    continue
                for user_id in users:
                    if known.get(user_id, -1) != positions.get(user_id, 0):
                        self.wake(user_id)
                known = {user_id: positions.get(user_id, 0) for user_id in users}
        finally:
            self.listening.clear()
            connections.close_all()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the listener's connection (tests; a process's exit
        needs nothing, the thread is a daemon)."""
        self._stop.set()
        listener = self._listener
        if listener is not None:
            listener.join(timeout)
        self._listener = None

    def _heard(self, payload: str) -> None:
        try:
            user_id = int(payload)
        except ValueError:
            logger.warning("live updates: ignored a notification %r", payload[:40])
            return
        self.wake(user_id)


def _listener_params() -> dict[str, Any]:
    params = connections["default"].get_connection_params()
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    return params


#: This process's hub (one per process; a forked worker starts its own listener).
hub = Hub()


def as_sse(updates: Iterable[Update]) -> str:
    """Server-sent events for ``updates``: ``id`` is the CloudEvent id, ``event`` is ``task``."""
    return "".join(
        f"id: {update.event_id}\nevent: task\ndata: {json.dumps(update.data)}\n\n"
        for update in updates
    )
