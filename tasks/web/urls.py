"""Every page of the web app. Each module owns its routes; this file lists the modules."""

from django.urls import include, path

urlpatterns = [
    path("", include("tasks.web.pages")),
    path("", include("tasks.web.task_form")),
    path("", include("tasks.web.labels")),
    path("", include("tasks.web.importing")),
    path("", include("tasks.web.live")),
    path("", include("tasks.web.accounts")),
    path("", include("webhooks.web")),
]
