"""The server processes' background worker: one thread per process.

Without a broker it delivers the outbox soon after each commit (``kick``): once the process
has no request in flight, or ``RELAY_IDLE_WAIT_SECONDS`` after the kick at the latest, so the
relay never runs beside the requests of a busy process, and, in the one process that holds
the scheduler lock, it runs the runtime's schedule (``events.runtime``'s
``SCHEDULE``). With a broker Celery relays and ``celery beat`` runs the shared entries, so
the thread starts only in a process serving a role, and its lock holder runs just the
role-bound entries (``Runtime.server_schedule``). It is started only by the server entry
points, WSGI, ASGI and the stdio MCP server (``manage.py mcp``), so never by ``migrate``,
other management commands or tests; they also run the start-up work of the served roles
(``START_UP``) in every mode.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections

from .runtime import START_UP, StartUp, runtime

logger = logging.getLogger(__name__)


def serves_a_role() -> bool:
    """Whether this process serves at least one role of the routing table."""
    from .dispatch import consumer_enabled, routing_table

    return any(consumer_enabled(role) for role in routing_table().roles)


def start_up_work() -> list[StartUp]:
    """The start-up work (``events.runtime.START_UP``) of the roles this process serves."""
    from .dispatch import consumer_enabled

    return [work for work in START_UP if consumer_enabled(work.role)]


def run_start_hooks(*, attempts: int = 60, delay: float = 5.0) -> None:
    """Run ``start_up_work()``, retrying failures (the sidecar may come up after the app)."""
    pending = start_up_work()
    for _ in range(attempts):
        for work in list(pending):
            try:
                work.run()
                pending.remove(work)
            except Exception as exc:
                logger.warning("start-up work failed, will retry name=%s error=%s", work.name, exc)
            finally:
                close_old_connections()
        if not pending:
            return
        time.sleep(delay)
    logger.error("start-up work gave up: %s", ", ".join(work.name for work in pending))


class SchedulerLock:
    """An exclusive file lock under var/: the process holding it is the one scheduler."""

    def __init__(self, path) -> None:
        self.path = path
        self._file = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the process's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


#: The longest a kicked relay waits for this process to have no request in flight: the
#: requests of a busy server are not slowed by the relay running beside them, and what
#: their commits wrote goes out together, at most this much later.
RELAY_IDLE_WAIT_SECONDS = 0.25


class RequestsInFlight:
    """How many requests this process is serving (Django's ``request_started`` and
    ``request_finished``), and an event set while it serves none."""

    def __init__(self) -> None:
        self._count = 0
        self._streams = 0
        self._lock = threading.Lock()
        self.idle = threading.Event()
        self.idle.set()

    def started(self, **kwargs) -> None:
        with self._lock:
            self._count += 1
            self.idle.clear()

    def finished(self, **kwargs) -> None:
        with self._lock:
            self._count = max(0, self._count - 1)
            self._update()

    def stream_opened(self) -> None:
        """A request became a long-lived stream (an open page's ``/live/``): it no longer
        counts, or the relay would always wait its longest in a process with a page open."""
        with self._lock:
            self._streams += 1
            self._update()

    def stream_closed(self) -> None:
        with self._lock:
            self._streams = max(0, self._streams - 1)
            self._update()

    def _update(self) -> None:
        if self._count - self._streams <= 0:
            self.idle.set()
        else:
            self.idle.clear()

    def connect(self) -> None:
        request_started.connect(self.started, dispatch_uid="events.background.started")
        request_finished.connect(self.finished, dispatch_uid="events.background.finished")


class BackgroundWorker:
    def __init__(self) -> None:
        self.requests = RequestsInFlight()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = SchedulerLock(str(settings.VAR_DIR / "scheduler.lock"))
        self.is_scheduler = False
        self._last_run: dict[str, float] = {}  # periodic work name -> time.monotonic() it ran

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="tideline-worker", daemon=True)
        self._thread.start()
        logger.info("background worker started pid=%s", self._pid)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self._lock.release()
        self.is_scheduler = False

    def kick(self) -> None:
        """Deliver soon: called after each commit that wrote outbox rows."""
        if self._pid is not None and self._pid != os.getpid():
            self.start()  # forked after start (e.g. gunicorn --preload): start in this process
        if self.running:
            self._wake.set()

    def _run(self) -> None:
        from .relay import relay_pending

        while not self._stop.is_set():
            woken = self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if woken:
                    # Off the requests' path: a commit kicks while its request is still
                    # being answered, so wait for a moment without requests (bounded).
                    self.requests.idle.wait(timeout=RELAY_IDLE_WAIT_SECONDS)
                    self._wake.clear()  # what was kicked meanwhile goes out in this pass
                    relay_pending()
                if not self.is_scheduler:
                    self.is_scheduler = self._lock.acquire()
                    if self.is_scheduler:
                        logger.info("this process is the scheduler pid=%s", os.getpid())
                if self.is_scheduler:
                    self.run_due_work()
            except Exception:
                logger.exception("background worker iteration failed")
            finally:
                close_old_connections()
        connections.close_all()  # this thread's connections die with it

    def run_due_work(self, *, now: float | None = None) -> list[str]:
        """Run each entry of this process's schedule (``Runtime.server_schedule``) that is due
        (never run, or its interval passed since it last ran, on ``time.monotonic()``);
        returns the names run."""
        now = time.monotonic() if now is None else now
        ran = []
        for entry in runtime().server_schedule(serves_a_role=serves_a_role()):
            if now - self._last_run.get(entry.name, float("-inf")) < entry.seconds():
                continue
            self._last_run[entry.name] = now
            ran.append(entry.name)
            try:
                entry.run()
            except Exception:
                logger.exception("periodic work failed name=%s", entry.name)
        return ran


worker = BackgroundWorker()


def start_background_worker() -> None:
    """Called by the server entry points only (WSGI, ASGI, ``manage.py mcp``; never by other
    management commands or tests): the served roles' start-up work, and the worker thread
    where the mode gives it work."""
    if not settings.TIDELINE_BACKGROUND:
        return
    if start_up_work():
        threading.Thread(target=run_start_hooks, name="tideline-start-hooks", daemon=True).start()
    mode = runtime()
    if mode.server_thread(serves_a_role=serves_a_role()):
        worker.requests.connect()
        worker.start()
    if mode.relay_thread:
        worker.kick()  # deliver what was written while no server ran (e.g. by seed_demo)
