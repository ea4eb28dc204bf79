from django.contrib import admin
from django.utils import timezone

from .models import DeliveryState, ReminderDelivery


@admin.register(ReminderDelivery)
class ReminderDeliveryAdmin(admin.ModelAdmin):
    list_display = ["task", "remind_at", "state", "attempts", "sent_at", "detail", "last_error"]
    list_filter = ["state"]
    search_fields = ["task__title", "task__user__username", "last_error"]
    date_hierarchy = "remind_at"
    list_select_related = ["task"]
    readonly_fields = [f.name for f in ReminderDelivery._meta.fields]
    actions = ["retry_now"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry sending now (failed or due deliveries)")
    def retry_now(self, request, queryset):
        count = queryset.filter(state__in=[DeliveryState.FAILED, DeliveryState.DUE]).update(
            state=DeliveryState.DUE, next_attempt_at=timezone.now(), attempts=0
        )
        self.message_user(request, f"{count} deliveries will be retried by the next sweep.")
