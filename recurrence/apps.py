from django.apps import AppConfig


class RecurrenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recurrence"

    def ready(self) -> None:
        from . import consumers  # noqa: F401  (registers the task-recurrence handler)
