from django.apps import AppConfig


class RecurrenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recurrence"
