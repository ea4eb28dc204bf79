"""WSGI entry point (gunicorn, runserver). Refuses to serve the sidecar's callbacks without
their token (tideline.E012), then starts the embedded background worker."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_project.settings")

application = get_wsgi_application()

from events.background import start_background_worker  # noqa: E402
from events.checks import refuse_to_serve_anonymous_callbacks  # noqa: E402

refuse_to_serve_anonymous_callbacks()
start_background_worker()
