from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from tasks.api.schema import SchemaView

urlpatterns = [
    # The API first: most requests are the API's, and each pattern before it is tried.
    path("api/", include(("tasks.api.urls", "api"))),
    path("", include("tasks.web.urls")),
    path("admin/", admin.site.urls),
    path("api/", include(("webhooks.api", "webhooks"))),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("events.urls")),
    path("", include("tasks.feeds")),
]

# A lost database escaping the views (e.g. from a middleware) is a 503, not a 500.
handler500 = "todo_project.outage.server_error"
# A URL under /api/ that matches no route is a JSON 404, like the API's own.
handler404 = "tasks.api.exceptions.not_found"
