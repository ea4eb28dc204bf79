"""ASGI entry point. Starts the embedded background worker, like the WSGI one."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_project.settings")

application = get_asgi_application()

from events.background import start_background_worker  # noqa: E402

start_background_worker()
