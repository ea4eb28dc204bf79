"""WSGI entry point (gunicorn, runserver). Starts the embedded background worker."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_project.settings")

application = get_wsgi_application()

from events.background import start_background_worker  # noqa: E402

start_background_worker()
