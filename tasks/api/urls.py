from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views
from .feed import FeedView
from .recurrence import RecurrencePreviewView
from .tokens import ApiTokenViewSet

router = DefaultRouter()
router.register("tasks", views.TaskViewSet, basename="task")
router.register("categories", views.CategoryViewSet, basename="category")
router.register("tags", views.TagViewSet, basename="tag")
router.register("views", views.SavedViewViewSet, basename="savedview")
router.register("tokens", ApiTokenViewSet, basename="apitoken")

urlpatterns = [
    path("auth/register/", views.RegisterView.as_view(), name="register"),
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("me/", views.MeView.as_view(), name="me"),
    path("feed/", FeedView.as_view(), name="feed"),
    path("recurrence/preview/", RecurrencePreviewView.as_view(), name="recurrence-preview"),
    path("", include(router.urls)),
]
