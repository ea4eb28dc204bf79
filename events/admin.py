from django.contrib import admin, messages

from .dispatch import ReplayResult, replay
from .models import DeadLetter, OutboxEvent, ProcessedEvent, StateEntry
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


#: Dead letters one "Replay" action runs, at most (each runs a handler within the request).
REPLAY_BATCH = 100


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

    @admin.action(description="Replay")
    def replay_selected(self, request, queryset):
        results = [replay(failure) for failure in queryset[:REPLAY_BATCH]]
        replayed = results.count(ReplayResult.REPLAYED)
        failed = results.count(ReplayResult.FAILED)
        skipped = results.count(ReplayResult.SKIPPED)
        self.message_user(
            request,
            f"{replayed} dead letter(s) replayed, {failed} failed again (still dead, with the"
            f" new error), {skipped} skipped (already replayed).",
            messages.WARNING if failed else messages.SUCCESS,
        )
        if queryset.count() > REPLAY_BATCH:
            self.message_user(
                request,
                f"Only the first {REPLAY_BATCH} were replayed: run the action again, or"
                " `manage.py replay_dead_letters --all`, for the rest.",
                messages.WARNING,
            )
