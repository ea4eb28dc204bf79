from django.apps import AppConfig
from django.db.backends.signals import connection_created


class TasksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tasks"

    def ready(self) -> None:
        from todo_project.sqlite import install_unicode_functions

        connection_created.connect(install_unicode_functions, dispatch_uid="sqlite-unicode")
