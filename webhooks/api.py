"""``/api/webhooks/``: register, list, change and delete endpoints; their delivery log,
"redeliver" and "send test event". Thin: serializers validate, the services write.

Not wrapped in ``AtomicWriteMixin``: registering resolves the URL's host (DNS), which may
not happen inside a transaction; each service opens its own.
"""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.throttling import ScopedRateThrottle

from tasks.api.serializers import StrictFieldsMixin
from tasks.api.throttling import UserRateThrottle

from . import selectors, services
from .models import (
    EVENT_TYPE_CHOICES,
    ReminderChannel,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


class WebhookEndpointSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """An endpoint as listed: never its secret."""

    url = serializers.URLField(
        max_length=2000,
        help_text="Where events are POSTed: https:// (http:// only where the operator allows it),"
        " never a private, loopback, link-local or metadata address.",
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
        allow_empty=False,
        min_length=1,
        max_length=len(EVENT_TYPE_CHOICES),
        help_text="The events wanted.",
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(
        required=False, help_text="false: nothing is sent. true again clears the failures."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "event_types",
            "description",
            "enabled",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
        ]


class NewWebhookEndpointSerializer(WebhookEndpointSerializer):
    """An endpoint just registered, with its signing secret: shown this once, never again."""

    secret = serializers.CharField(
        read_only=True,
        help_text="The Standard Webhooks signing secret (`whsec_...`). Store it now: it is "
        "not shown again.",
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["started_at", "status_code", "duration_ms", "response_excerpt", "error"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempt_count = serializers.IntegerField(source="attempts", read_only=True)
    attempts = WebhookAttemptSerializer(many=True, read_only=True, source="attempt_log")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "state",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "finished_at",
            "attempts",
        ]
        read_only_fields = fields


#: Test events and redeliveries also count against the ``webhooks`` rate (per user).
class ReminderChannelsSerializer(StrictFieldsMixin, serializers.Serializer):
    channel = serializers.ChoiceField(
        choices=ReminderChannel.choices,
        help_text="How reminders go out: by e-mail, to your webhooks wanting `reminder.due`, "
        "or both.",
    )
    ntfy_url = serializers.URLField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="An ntfy topic (`https://ntfy.sh/<topic>`) that also gets each reminder as a "
        "push; empty: none.",
    )


SENDING = {"throttle_classes": [UserRateThrottle, ScopedRateThrottle]}


@extend_schema_view(
    list=extend_schema(summary="List your webhooks (never their secrets)"),
    create=extend_schema(
        summary="Register a webhook; its signing secret is answered this once",
        responses={201: NewWebhookEndpointSerializer},
    ),
    retrieve=extend_schema(summary="Get a webhook"),
    update=extend_schema(summary="Replace a webhook's URL, events, description, enabled"),
    partial_update=extend_schema(summary="Change some fields of a webhook"),
    destroy=extend_schema(
        summary="Delete a webhook and its delivery log",
        responses={204: OpenApiResponse(description="Deleted: nothing more is sent")},
    ),
)
class WebhookEndpointViewSet(viewsets.ModelViewSet):
    queryset = WebhookEndpoint.objects.none()  # for the schema; requests use get_queryset()
    serializer_class = WebhookEndpointSerializer
    throttle_scope = "webhooks"  # only where ScopedRateThrottle is asked for (SENDING)

    def get_queryset(self):
        return selectors.endpoint_list(user=self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(user=request.user, **serializer.validated_data)
        return Response(NewWebhookEndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.endpoint_update(
            endpoint=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.endpoint_delete(endpoint=instance)

    @extend_schema(
        summary="The webhook's delivery log, newest first, each with its attempts",
        responses=WebhookDeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def deliveries(self, request, pk=None):
        rows = selectors.delivery_list(endpoint=self.get_object())
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        request=None,
        summary="Send a delivery again (same webhook-id, fresh attempts); queued, sent shortly",
        responses={202: WebhookDeliverySerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[0-9]{1,18})/redeliver",
        filter_backends=[],
        **SENDING,
    )
    def redeliver(self, request, pk=None, delivery_id=None):
        endpoint = self.get_object()
        delivery = get_object_or_404(WebhookDelivery, endpoint=endpoint, pk=delivery_id)
        delivery = services.delivery_redeliver(delivery=delivery)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        summary="Send a `webhook.test` event to this webhook; queued, sent shortly",
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[], **SENDING)
    def test(self, request, pk=None):
        delivery = services.endpoint_send_test(endpoint=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    get=extend_schema(summary="How your reminders go out"),
    put=extend_schema(
        summary="Choose how your reminders go out (e-mail, webhook, both; an ntfy topic)"
    ),
)
class ReminderChannelsView(generics.RetrieveUpdateAPIView):
    """``/api/webhooks/reminder-channels/``: how the user's reminders go out."""

    serializer_class = ReminderChannelsSerializer
    http_method_names = ["get", "put", "head", "options"]

    def get_object(self) -> dict[str, str]:
        return selectors.reminder_channels(user=self.request.user)

    def perform_update(self, serializer):
        services.reminder_channels_update(user=self.request.user, **serializer.validated_data)
        serializer.instance = self.get_object()


router = SimpleRouter()
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")

urlpatterns = [
    # Before the router, whose detail route would read "reminder-channels" as an id.
    path("webhooks/reminder-channels/", ReminderChannelsView.as_view(), name="reminder-channels"),
    path("", include(router.urls)),
]
