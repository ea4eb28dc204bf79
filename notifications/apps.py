from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self) -> None:
        from events.background import on_start

        from .services import register_sweep_job

        on_start("register-sweep-job", consumer="notifications")(register_sweep_job)
