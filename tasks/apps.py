from django.apps import AppConfig
from django.db.backends.signals import connection_created


class TasksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tasks"

    def ready(self) -> None:
        from todo_project.postgres import install_c_timestamp_parser
        from todo_project.sqlite import install_unicode_functions

        from . import signals

        connection_created.connect(install_unicode_functions, dispatch_uid="sqlite-unicode")
        connection_created.connect(install_c_timestamp_parser, dispatch_uid="pg-timestamps")
        # The safety net: a Task saved, deleted or tagged outside tasks.services (the shell,
        # a data fix) still publishes its event; the services publish their own.
        signals.connect()
