from django.contrib import admin

from .models import WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Operators see endpoints and why one was disabled; never the signing secret."""

    list_display = ["url", "user", "kind", "enabled", "consecutive_failures", "disabled_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["url", "user__username", "description"]
    list_select_related = ["user"]
    exclude = ["secret"]
    readonly_fields = [
        f.name for f in WebhookEndpoint._meta.fields if f.name not in ("secret", "id")
    ]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event_type", "event_id", "endpoint", "state", "attempts", "last_status_code"]
    list_filter = ["state", "event_type"]
    search_fields = ["event_id", "endpoint__url", "last_error"]
    list_select_related = ["endpoint"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
