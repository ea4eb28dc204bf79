from django.conf import settings
from django.contrib import admin, messages

from .dispatch import consumer_named
from .failures import put_back_in_line
from .models import DeadLetter, FailureState, OutboxEvent, ProcessedEvent, StateEntry
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


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    """Events a consumer gave up on (the failure policy): what, why, and a replay."""

    list_display = [
        "consumer",
        "event_type",
        "event_id",
        "topic",
        "partition_key",
        "state",
        "attempts",
        "short_error",
        "first_failed_at",
        "last_failed_at",
        "dead_at",
        "replayed_at",
        "next_attempt_at",
    ]
    list_filter = ["state", "consumer", "event_type", "topic"]
    search_fields = ["event_id", "partition_key", "last_error"]
    date_hierarchy = "dead_at"
    actions = ["replay_selected"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Last error")
    def short_error(self, failure: DeadLetter) -> str:
        return failure.last_error[:80]

    @admin.action(description="Replay (put back in line)")
    def replay_selected(self, request, queryset):
        """One UPDATE: the process serving each consumer's role runs them (web serves none:
        a handler run here could call this app's sidecar on another app's behalf)."""
        selected = queryset.count()
        roles = sorted(
            {
                consumer.role if consumer else "?"
                for consumer in map(
                    consumer_named,
                    queryset.filter(state=FailureState.DEAD)
                    .values_list("consumer", flat=True)
                    .distinct(),
                )
            }
        )
        queued = put_back_in_line(queryset)
        self.message_user(
            request,
            f"{queued} dead letter(s) put back in line with a fresh budget: the process serving"
            f" {', '.join(roles) or 'their role'} runs them within"
            f" {settings.RELAY_SWEEP_SECONDS:g} s. {selected - queued} skipped (not dead).",
            messages.SUCCESS,
        )
