"""The load runs' application, served like the app (ASGI): the app with the benchmark URLconf
(the baselines)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_project.settings")

from django.conf import settings

from todo_project.asgi import application  # noqa: F401

settings.ROOT_URLCONF = "benchmarks.urls"
