from django.contrib import admin

from tasks.admin import in_task_zone

from .models import ReminderDelivery
from .services import deliveries_retry

#: The delivery's date-times, shown in its task's zone (named), like the task's own page.
DATETIME_FIELDS = {
    f.name for f in ReminderDelivery._meta.fields if f.get_internal_type() == "DateTimeField"
}


def _task(delivery: ReminderDelivery):
    return delivery.task


@admin.register(ReminderDelivery)
class ReminderDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "task",
        "remind_at_in_zone",
        "state",
        "attempts",
        "sent_at_in_zone",
        "detail",
        "last_error",
    ]
    list_filter = ["state"]
    search_fields = ["task__title", "task__user__username", "last_error"]
    date_hierarchy = "remind_at"
    list_select_related = ["task"]
    readonly_fields = [
        f"{f.name}_in_zone" if f.name in DATETIME_FIELDS else f.name
        for f in ReminderDelivery._meta.fields
    ]
    actions = ["retry_now"]

    remind_at_in_zone = in_task_zone("remind_at", zone_of=_task)
    next_attempt_at_in_zone = in_task_zone("next_attempt_at", zone_of=_task)
    due_at_in_zone = in_task_zone("due_at", zone_of=_task)
    claimed_at_in_zone = in_task_zone("claimed_at", zone_of=_task)
    sent_at_in_zone = in_task_zone("sent_at", zone_of=_task)
    created_at_in_zone = in_task_zone("created_at", zone_of=_task)
    updated_at_in_zone = in_task_zone("updated_at", zone_of=_task)

    def get_queryset(self, request):
        # The page's title and every date-time read the task's zone: one query, not one each.
        return super().get_queryset(request).select_related("task")

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry sending now (failed or due deliveries)")
    def retry_now(self, request, queryset):
        count = deliveries_retry(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} deliveries are due again and will be sent now.")
