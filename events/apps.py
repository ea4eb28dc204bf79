from django.apps import AppConfig


class EventsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "events"

    def ready(self) -> None:
        from django.core import checks

        from .checks import check_app_token, check_routing_table
        from .runtime import check_runtime_tables

        checks.register(check_routing_table)
        checks.register(check_runtime_tables)
        checks.register(check_app_token, deploy=True)
