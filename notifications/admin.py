from django.contrib import admin

from .models import ReminderDelivery
from .services import deliveries_retry


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
        count = deliveries_retry(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} deliveries are due again and will be sent now.")
