from django.apps import AppConfig


class EventsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "events"

    def ready(self) -> None:
        from django.conf import settings
        from django.core import checks

        from . import signals  # noqa: F401  (the safety-net receivers)
        from .background import periodic
        from .checks import check_routing_table
        from .jobs_client import DatabaseJobs
        from .relay import prune, relay_pending
        from .state import DatabaseStateStore

        checks.register(check_routing_table)
        periodic("sweep-outbox", every=settings.RELAY_SWEEP_SECONDS)(relay_pending)
        periodic("prune-outbox", every=3600)(prune)
        periodic("purge-expired-state", every=3600)(DatabaseStateStore().purge_expired)
        if not settings.DAPR_ENABLED:  # the embedded scheduler fires the jobs itself
            periodic("fire-embedded-jobs", every=1.0)(DatabaseJobs().fire_due)
