from django.urls import path

from . import views

urlpatterns = [
    path("dapr/subscribe", views.SubscribeView.as_view(), name="dapr-subscribe"),
    path("events/<str:topic>", views.TopicEventView.as_view(), name="dapr-topic"),
    path("job/<str:name>", views.JobCallbackView.as_view(), name="dapr-job"),
    path("healthz", views.HealthView.as_view(), name="healthz"),
    path("readyz", views.ReadyView.as_view(), name="readyz"),
]
