"""The routes the Dapr sidecar and the kubelet call (``todo_project/hosts.py`` names them).

The sidecar's routes exist only while ``DAPR_ENABLED``: without Dapr the embedded transport
calls the handlers in-process, so nothing may call them over HTTP and they answer 404 like
any unknown path. The setting is read on every request, not when the URLconf is imported.
"""

from django.conf import settings
from django.urls import URLPattern, path
from django.urls.resolvers import RoutePattern

from . import views


class DaprRoutePattern(RoutePattern):
    """A route pattern that matches nothing while Dapr is off."""

    def match(self, path: str):
        return super().match(path) if settings.DAPR_ENABLED else None


def dapr_path(route: str, view, name: str) -> URLPattern:
    return URLPattern(DaprRoutePattern(route, name=name, is_endpoint=True), view, name=name)


urlpatterns = [
    dapr_path("dapr/subscribe", views.SubscribeView.as_view(), name="dapr-subscribe"),
    dapr_path("events/<str:topic>", views.TopicEventView.as_view(), name="dapr-topic"),
    dapr_path("job/<str:name>", views.JobCallbackView.as_view(), name="dapr-job"),
    path("healthz", views.HealthView.as_view(), name="healthz"),
    path("readyz", views.ReadyView.as_view(), name="readyz"),
]
