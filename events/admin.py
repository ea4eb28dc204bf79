from django.contrib import admin

from .models import OutboxEvent, ProcessedEvent, StateEntry
from .relay import retry_now


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = [
        "seq",
        "event_type",
        "topic",
        "partition_key",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "delivered_at",
        "short_error",
    ]
    list_filter = ["state", "topic", "event_type"]
    search_fields = ["id", "partition_key", "last_error"]
    date_hierarchy = "created_at"
    actions = ["retry_selected"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Last error")
    def short_error(self, row: OutboxEvent) -> str:
        return row.last_error[:80]

    @admin.action(description="Retry now")
    def retry_selected(self, request, queryset):
        count = retry_now(queryset)
        self.message_user(request, f"{count} event(s) queued for immediate delivery.")
        if count:
            from .relay import request_relay

            request_relay()


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(admin.ModelAdmin):
    list_display = ["consumer", "event_id", "processed_at"]
    list_filter = ["consumer"]
    search_fields = ["event_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StateEntry)
class StateEntryAdmin(admin.ModelAdmin):
    list_display = ["key", "etag", "updated_at", "expires_at"]
    search_fields = ["key"]
