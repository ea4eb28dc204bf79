"""Run the outbox relay as a dedicated process (or once, with --once)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from events.relay import prune, relay_pending


class Command(BaseCommand):
    help = "Deliver pending outbox events; loops until interrupted unless --once is given."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Deliver what is due and exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between sweeps (default RELAY_SWEEP_SECONDS).",
        )

    def handle(self, *args, once: bool = False, interval: float | None = None, **options):
        interval = interval if interval is not None else settings.RELAY_SWEEP_SECONDS
        if once:
            stats = relay_pending()
            self.stdout.write(
                f"delivered={stats.delivered} retried={stats.retried} failed={stats.failed}"
            )
            return
        self.stdout.write(f"Relaying outbox events every {interval}s (Ctrl-C to stop).")
        last_prune = 0.0
        try:
            while True:
                stats = relay_pending()
                if stats.attempted:
                    self.stdout.write(
                        f"delivered={stats.delivered} retried={stats.retried} failed={stats.failed}"
                    )
                if time.monotonic() - last_prune > 3600:
                    prune()
                    last_prune = time.monotonic()
                close_old_connections()
                if not stats.delivered:
                    time.sleep(interval)
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
