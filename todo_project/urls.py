from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tasks.views import task_detail

urlpatterns = [
    path(
        "",
        TemplateView.as_view(
            template_name="home.html", extra_context={"demo_login": settings.DEBUG}
        ),
        name="home",
    ),
    path("admin/", admin.site.urls),
    path("tasks/<int:task_id>/", task_detail, name="task-detail"),
    path("api/", include("tasks.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("events.urls")),
]
