"""The runtime: which infrastructure this process uses, decided once, here, from settings.

Two independent switches make the mode, and they combine freely:

- ``DAPR_ENABLED`` picks the infrastructure: the sidecar (``DaprTransport``, ``DaprJobs``,
  ``DaprStateStore``) or the database standing in for it (``InProcessTransport`` hands
  events to the dispatcher, ``DatabaseJobs`` keeps jobs as rows, ``DatabaseStateStore``).
- ``CELERY_BROKER_URL`` picks who does the background work: Celery (after each commit a
  worker is asked to relay; ``celery beat`` runs the shared schedule) or the embedded worker
  thread of each server process (kicked after each commit; the holder of the scheduler lock
  runs the schedule, see ``events.background``).

So there are four modes: the embedded default, Celery, Dapr (the worker thread publishes to
the sidecar) and Dapr with Celery. ``runtime()`` is the only place that reads the two
switches; ``get_transport()``, ``jobs_client()``, ``state_store()`` and ``request_relay()``
are one-line delegates to it.

``SCHEDULE`` is the one table of periodic work. An entry is *role-bound* when what it does
depends on the roles the process serves (``EVENT_CONSUMERS``): it runs the handlers of those
roles, which under Dapr call their own app's sidecar. Role-bound entries run only in server
processes serving a role, in every mode (``Runtime.server_schedule``); the other entries are
shared: ``celery beat`` (``todo_project/celery.py``, ``Runtime.beat_schedule``) runs them
with a broker, the embedded scheduler without one. ``START_UP`` is the work a server process
does once at start for the roles it serves, in every mode.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .jobs_client import JobsClient
    from .state import StateStore
    from .transports import DaprTransport, InProcessTransport


@dataclass(frozen=True)
class Periodic:
    """Run ``target`` (the dotted path of a function without arguments) every ``every``
    seconds, in the one scheduler; ``every`` may name the setting that holds the seconds."""

    name: str
    target: str
    every: float | str
    purpose: str
    without_dapr: bool = False  # upkeep of a database stand-in for Dapr: not run with Dapr
    role_bound: bool = False  # runs the served roles' handlers: only where a role is served

    def seconds(self) -> float:
        return float(getattr(settings, self.every) if isinstance(self.every, str) else self.every)

    def run(self) -> object:
        return import_string(self.target)()


@dataclass(frozen=True)
class StartUp:
    """Run ``target`` once when a server process serving ``role`` starts (retried until done:
    the sidecar may come up after the app)."""

    name: str
    target: str
    role: str
    purpose: str

    def run(self) -> object:
        return import_string(self.target)()


SCHEDULE: tuple[Periodic, ...] = (
    Periodic(
        "sweep-outbox",
        "events.relay.relay_pending",
        every="RELAY_SWEEP_SECONDS",
        purpose="deliver retries that came due, and anything a missed kick left behind",
    ),
    Periodic(
        "retry-consumer-failures",
        "events.dispatch.retry_consumer_failures",
        every="RELAY_SWEEP_SECONDS",
        purpose="run again the due events a consumer of this process's roles failed;"
        " dead-letter those out of attempts",
        role_bound=True,
    ),
    Periodic(
        "send-webhooks",
        "webhooks.services.deliveries_sweep",
        every="WEBHOOK_SWEEP_SECONDS",
        purpose="send webhook retries, redeliveries and test events that came due; release"
        " claims older than `WEBHOOK_SENDING_LEASE_SECONDS`",
        role_bound=True,
    ),
    Periodic(
        "prune-outbox",
        "events.relay.prune",
        every=3600,
        purpose="delete delivered events, consumer records and handled replays older than"
        " `OUTBOX_RETENTION_HOURS`",
    ),
    Periodic(
        "prune-live-updates",
        "events.live.prune",
        every=3600,
        purpose="delete live updates older than `LIVE_UPDATES_RETENTION_HOURS`",
    ),
    Periodic(
        "prune-webhook-deliveries",
        "webhooks.services.deliveries_prune",
        every=3600,
        purpose="delete finished webhook deliveries and their attempts older than"
        " `WEBHOOK_RETENTION_DAYS`",
    ),
    Periodic(
        "purge-expired-state",
        "events.state.purge_expired_state",
        every=3600,
        purpose="delete state entries whose TTL ran out",
        without_dapr=True,
    ),
    Periodic(
        "purge-idempotency-keys",
        "tasks.api.idempotency.purge_expired",
        every=3600,
        purpose="delete the API's `Idempotency-Key` records older than `IDEMPOTENCY_KEY_TTL_HOURS`",
    ),
    Periodic(
        "fire-embedded-jobs",
        "events.jobs_client.fire_due_jobs",
        every=1,
        purpose="call the handlers of due jobs (reminders, `check-due-tasks`) of this"
        " process's roles",
        without_dapr=True,
        role_bound=True,
    ),
)

START_UP: tuple[StartUp, ...] = (
    StartUp(
        "register-sweep-job",
        "notifications.services.register_sweep_job",
        role="notifications",
        purpose="register the repeating `check-due-tasks` job (an overwrite: safe at every start)",
    ),
)


@dataclass(frozen=True)
class Runtime:
    """The pieces of one mode. Each piece is made on use, so the runtime can be read before
    Django's apps are loaded (``celery beat`` reads the schedule while it configures)."""

    dapr: bool
    celery: bool

    @property
    def transport(self) -> DaprTransport | InProcessTransport:
        from .transports import DaprTransport, InProcessTransport

        return DaprTransport() if self.dapr else InProcessTransport()

    @property
    def jobs(self) -> JobsClient:
        from .jobs_client import DaprJobs, DatabaseJobs

        return DaprJobs() if self.dapr else DatabaseJobs()

    @property
    def state(self) -> StateStore:
        from .state import DaprStateStore, DatabaseStateStore

        return DaprStateStore() if self.dapr else DatabaseStateStore()

    @property
    def relay_thread(self) -> bool:
        """Whether server processes relay in their worker thread (kicked after each commit)."""
        return not self.celery

    @property
    def schedule(self) -> tuple[Periodic, ...]:
        """The periodic work of this mode, wherever it runs."""
        return tuple(entry for entry in SCHEDULE if not (self.dapr and entry.without_dapr))

    @property
    def beat_schedule(self) -> tuple[Periodic, ...]:
        """What ``celery beat`` runs: with a broker, the shared entries (beat and the Celery
        workers serve no role); without one there is no beat."""
        return tuple(entry for entry in self.schedule if self.celery and not entry.role_bound)

    def server_schedule(self, *, serves_a_role: bool) -> tuple[Periodic, ...]:
        """What the scheduler-lock holder of a server process runs: the role-bound entries
        where it serves a role, and the shared ones unless ``celery beat`` runs them."""
        return tuple(
            entry
            for entry in self.schedule
            if (serves_a_role if entry.role_bound else not self.celery)
        )

    def server_thread(self, *, serves_a_role: bool) -> bool:
        """Whether a server process starts its worker thread: to relay, or to run its
        schedule (with a broker, only a process serving a role has one)."""
        return self.relay_thread or bool(self.server_schedule(serves_a_role=serves_a_role))

    def beat_entry(self, name: str) -> Periodic:
        """The entry of ``beat_schedule`` named ``name`` (what a Celery worker runs)."""
        for entry in self.beat_schedule:
            if entry.name == name:
                return entry
        raise LookupError(f"no periodic work named {name!r} in celery beat's schedule")

    def request_relay(self) -> None:
        """After commit: ask a worker to deliver now."""
        if self.celery:
            from .tasks import relay_outbox

            relay_outbox.delay()
        else:
            from . import background

            background.worker.kick()


@functools.cache
def runtime() -> Runtime:
    return Runtime(dapr=settings.DAPR_ENABLED, celery=bool(settings.CELERY_BROKER_URL))


def check_runtime_tables(app_configs=None, **kwargs) -> list[CheckMessage]:
    """``manage.py check``: every target of ``SCHEDULE`` and ``START_UP`` can be imported and
    called, every interval is a positive number of seconds, every start-up role is known."""
    from .routing import TABLE

    errors: list[CheckMessage] = []
    for work in (*SCHEDULE, *START_UP):
        try:
            problem = "" if callable(import_string(work.target)) else "not callable"
        except ImportError as exc:
            problem = str(exc)
        if problem:
            errors.append(
                Error(
                    f"{work.name}: target {work.target!r} cannot be called ({problem}).",
                    hint="The function was renamed or moved: update events/runtime.py.",
                    id="tideline.E010",
                )
            )
    for entry in SCHEDULE:
        try:
            valid = entry.seconds() > 0
        except (AttributeError, TypeError, ValueError):
            valid = False
        if not valid:
            errors.append(
                Error(
                    f"{entry.name}: interval {entry.every!r} is not a positive number of "
                    "seconds, nor the name of a setting holding one.",
                    id="tideline.E010",
                )
            )
    for work in START_UP:
        if work.role not in TABLE.roles:
            errors.append(
                Error(
                    f"{work.name}: role {work.role!r} is not a role of the routing table.",
                    hint=f"Known roles: {', '.join(TABLE.roles)}.",
                    id="tideline.E011",
                )
            )
    return errors


@receiver(setting_changed)
def _forget_runtime(*, setting: str, **kwargs) -> None:
    """Tests switch modes with ``override_settings``: choose again on the next use."""
    if setting in {"DAPR_ENABLED", "CELERY_BROKER_URL"}:
        runtime.cache_clear()
