"""ASGI entry point: the production server (gunicorn with uvicorn workers, gunicorn.conf.py)
and `make run` (uvicorn). Django, with the MCP server at /mcp/ (tasks/mcp/http.py, which also
takes the ASGI lifespan). Refuses to serve the sidecar's callbacks without their token
(tideline.E012), then starts the embedded background worker, like the WSGI one."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_project.settings")

django_application = get_asgi_application()

from events.background import start_background_worker  # noqa: E402
from events.checks import refuse_to_serve_anonymous_callbacks  # noqa: E402
from tasks.mcp.http import with_mcp  # noqa: E402

application = with_mcp(django_application)

refuse_to_serve_anonymous_callbacks()
start_background_worker()
