"""The benchmark URLconf: the whole app, plus the baselines under /bench/."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from todo_project.urls import handler404, handler500  # noqa: F401
from todo_project.urls import urlpatterns as app_urlpatterns

from . import views

router = SimpleRouter()
router.register("tasks", views.NaiveTaskViewSet, basename="naive-task")

urlpatterns = [
    path("bench/plain/tasks/", views.plain_list),
    path("bench/plain/tasks/create/", views.plain_create),
    path("bench/plain/tasks/<int:pk>/", views.plain_detail),
    path("bench/naive/", include(router.urls)),
    *app_urlpatterns,
]
