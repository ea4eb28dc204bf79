"""Operators' admin. Every write goes through ``tasks.services``, like the API's."""

import zoneinfo
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.db import models as django_models
from django.utils import timezone

from notifications.models import ReminderDelivery
from todo_project.timezones import format_in_zone, localize, to_local_naive

from . import services
from .models import (
    TASK_SYSTEM_FIELDS,
    ApiToken,
    Category,
    IdempotencyKey,
    Profile,
    Tag,
    Task,
    available_timezones,
)

TASK_FORM_FIELDS = [f for f in services.TASK_EDITABLE_FIELDS if f != "tags"]
#: Date-times typed in the task form are wall-clock times in the task's own time zone.
LOCAL_DATETIME_FIELDS = ("due_date", "remind_at")
#: The system's date-times of a task, shown read-only in the task's own zone.
SYSTEM_DATETIME_FIELDS = tuple(
    name
    for name in TASK_SYSTEM_FIELDS
    if isinstance(Task._meta.get_field(name), django_models.DateTimeField)
)


def _itself(row: Task) -> Task:
    return row


def in_task_zone(
    field: str, *, label: str | None = None, zone_of: Callable[[Any], Task] = _itself
) -> Callable[[admin.ModelAdmin, Any], str | None]:
    """An admin column or read-only field showing ``field`` of a row in its task's zone,
    named: "2026-12-05 09:00 (Europe/Berlin)". ``zone_of`` gives the task whose zone counts
    (the row itself, or the task the page is about), so one page never mixes zones."""

    @admin.display(description=label or field.replace("_", " ").capitalize(), ordering=field)
    def column(model_admin, row) -> str | None:
        value = getattr(row, field)
        return None if value is None else format_in_zone(value, zone_of(row).timezone)

    column.__name__ = f"{field}_in_zone"
    return column


class OwnerScopedListFilter(admin.RelatedFieldListFilter):
    """A category or tag filter: each choice named with its owner ("Work (alice)"), and only
    the chosen user's once the user filter is set (names repeat across users)."""

    def field_choices(self, field, request, model_admin):
        owned = field.related_model.objects.select_related("user").order_by(
            "user__username", "name"
        )
        user_id = request.GET.get("user__id__exact", "")
        if user_id.isdigit():
            owned = owned.filter(user_id=int(user_id))
        return [(obj.pk, f"{obj.name} ({obj.user.username})") for obj in owned]

    def has_output(self) -> bool:
        # The admin drops a filter without choices, and with it a choice already made: a
        # category of another user than the one chosen would then filter nothing.
        return super().has_output() or bool(self.lookup_val)


def _zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The named zone, or None for a bad name (the form reports that on its own)."""
    return zoneinfo.ZoneInfo(name) if name in available_timezones() else None


class TaskAdminForm(forms.ModelForm):
    tag_names = forms.CharField(
        label="Tags",
        required=False,
        help_text="Comma-separated tag names; unknown names are created for the task's owner.",
    )

    class Meta:
        model = Task
        fields = ["user", *TASK_FORM_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["user"].disabled = True
            self.fields["category"].queryset = Category.objects.filter(user=self.instance.user)
            self.initial["tag_names"] = ", ".join(t.name for t in self.instance.tags.all())
            zone = _zone(self.instance.timezone)
            for name in LOCAL_DATETIME_FIELDS:
                self.fields[name].help_text = f"In the task's time zone ({self.instance.timezone})."
                value = getattr(self.instance, name)
                if value is not None and zone is not None:
                    # Shown as the task's local wall-clock time, not the admin's.
                    self.initial[name] = to_local_naive(value, zone.key)
        else:
            for name in LOCAL_DATETIME_FIELDS:
                self.fields[name].help_text = "In the task's time zone (the Timezone field)."

    def clean(self):
        cleaned = super().clean()
        zone = _zone(cleaned.get("timezone") or self.instance.timezone)
        if zone is not None:
            for name in LOCAL_DATETIME_FIELDS:
                value = cleaned.get(name)
                if value is not None:
                    # The form field read the input in the admin's current time zone; read
                    # the same wall-clock time in the task's, as every other write path does.
                    cleaned[name] = localize(timezone.make_naive(value), zone.key)
        return cleaned

    def clean_tag_names(self) -> list[str]:
        return [n.strip() for n in self.cleaned_data["tag_names"].split(",") if n.strip()]

    def _post_clean(self):
        super()._post_clean()
        from recurrence.rules import validate_task_recurrence

        try:
            validate_task_recurrence(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)


class SpawnedTaskInline(admin.TabularInline):
    """The instances a recurring task spawned, read-only, their times in this task's zone."""

    model = Task
    fk_name = "parent"
    verbose_name = "spawned instance"
    verbose_name_plural = "spawned instances"
    fields = ["title", "occurrence_in_zone", "due_date_in_zone", "completed"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    occurrence_in_zone = in_task_zone("occurrence", zone_of=lambda row: row.parent)
    due_date_in_zone = in_task_zone("due_date", label="Due", zone_of=lambda row: row.parent)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("parent")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ReminderDeliveryInline(admin.TabularInline):
    """The task's reminders and what became of each, read-only, in the task's zone."""

    model = ReminderDelivery
    fields = ["remind_at_in_zone", "state", "attempts", "sent_at_in_zone", "detail", "last_error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    remind_at_in_zone = in_task_zone("remind_at", label="Remind at", zone_of=lambda row: row.task)
    sent_at_in_zone = in_task_zone("sent_at", label="Sent at", zone_of=lambda row: row.task)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("task")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    form = TaskAdminForm
    list_display = [
        "title",
        "user",
        "priority",
        "due_date_in_zone",
        "completed",
        "category",
        "tag_list",
        "has_recurrence",
        "remind_at_in_zone",
    ]
    list_filter = [
        ("user", admin.RelatedOnlyFieldListFilter),
        "priority",
        "completed",
        "due_date",
        ("category", OwnerScopedListFilter),
        ("tags", OwnerScopedListFilter),
        "recurrence_type",
        "recurrence_mode",
    ]
    search_fields = ["title", "description", "user__username", "tags__name"]
    date_hierarchy = "due_date"
    list_select_related = ["user", "category"]
    # The system's date-times in the task's zone, like the due date and reminder typed above.
    readonly_fields = [
        f"{name}_in_zone" if name in SYSTEM_DATETIME_FIELDS else name for name in TASK_SYSTEM_FIELDS
    ]
    inlines = [SpawnedTaskInline, ReminderDeliveryInline]
    actions = ["mark_complete", "reopen"]

    due_date_in_zone = in_task_zone("due_date", label="Due")
    remind_at_in_zone = in_task_zone("remind_at", label="Reminder")
    completed_at_in_zone = in_task_zone("completed_at")
    next_occurrence_at_in_zone = in_task_zone("next_occurrence_at")
    last_triggered_at_in_zone = in_task_zone("last_triggered_at")
    occurrence_in_zone = in_task_zone("occurrence")
    created_at_in_zone = in_task_zone("created_at")
    updated_at_in_zone = in_task_zone("updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags")

    def get_inlines(self, request, obj):
        # A task being added has spawned nothing and has no reminders yet.
        return self.inlines if obj is not None else []

    @admin.display(description="Tags")
    def tag_list(self, task: Task) -> str:
        return ", ".join(tag.name for tag in task.tags.all())

    @admin.display(boolean=True, description="Repeats")
    def has_recurrence(self, task: Task) -> bool:
        return task.has_recurrence

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in TASK_FORM_FIELDS if f in form.cleaned_data}
        data["tags"] = form.cleaned_data.get("tag_names", [])
        if change:
            original = Task.objects.get(pk=obj.pk)
            changed = {f: data[f] for f in data if f in form.changed_data}
            if "tag_names" in form.changed_data:
                changed["tags"] = data["tags"]
            services.task_update(task=original, data=changed)
        else:
            data["timezone_name"] = data.pop("timezone", None)
            obj.pk = services.task_create(user=form.cleaned_data["user"], **data).pk

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        services.task_delete(task=obj)

    def delete_queryset(self, request, queryset):
        for task in queryset:
            services.task_delete(task=task)

    @admin.action(description="Mark selected tasks complete")
    def mark_complete(self, request, queryset):
        for task in queryset:
            services.task_complete(task=task)
        self.message_user(request, f"{queryset.count()} task(s) marked complete.")

    @admin.action(description="Reopen selected tasks")
    def reopen(self, request, queryset):
        for task in queryset:
            services.task_reopen(task=task)
        self.message_user(request, f"{queryset.count()} task(s) reopened.")


class OwnedByServiceAdmin(admin.ModelAdmin):
    """Category and Tag admin: create, update and delete through the services."""

    create_service = update_service = delete_service = None
    list_select_related = ["user"]

    def get_readonly_fields(self, request, obj=None):
        # The services never move a category or tag to another user: show the owner, read-only,
        # rather than offer a change that would be silently dropped.
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "user"] if obj is not None else readonly

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in form.changed_data if f != "user"}
        if change:
            self.update_service(obj.__class__.objects.get(pk=obj.pk), data=data)
        else:
            created = self.create_service(user=form.cleaned_data["user"], **data)
            obj.pk = created.pk

    def delete_model(self, request, obj):
        self.delete_service(obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_service(obj)


@admin.register(Category)
class CategoryAdmin(OwnedByServiceAdmin):
    list_display = ["name", "color", "user"]
    search_fields = ["name", "user__username"]
    list_filter = [("user", admin.RelatedOnlyFieldListFilter)]  # owners only, not every user

    def create_service(self, **kwargs):
        return services.category_create(**kwargs)

    def update_service(self, obj, *, data):
        return services.category_update(category=obj, data=data)

    def delete_service(self, obj):
        services.category_delete(category=obj)


@admin.register(Tag)
class TagAdmin(OwnedByServiceAdmin):
    list_display = ["name", "user"]
    search_fields = ["name", "user__username"]
    list_filter = [("user", admin.RelatedOnlyFieldListFilter)]  # owners only, not every user

    def create_service(self, **kwargs):
        return services.tag_create(**kwargs)

    def update_service(self, obj, *, data):
        return services.tag_update(tag=obj, data=data)

    def delete_service(self, obj):
        services.tag_delete(tag=obj)


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "timezone", "reminders_enabled"]
    list_filter = ["reminders_enabled", "timezone"]
    search_fields = ["user__username", "user__email"]

    def save_model(self, request, obj, form, change):
        if change:
            services.profile_update(user=obj.user, data=form.cleaned_data)
        else:
            super().save_model(request, obj, form, change)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Operators see tokens (never a secret: only its digest is stored, and not shown) and
    revoke them with the delete action; tokens are created by their owners only."""

    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    list_filter = [("expires_at", admin.EmptyFieldListFilter)]
    fields = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.api_token_revoke(token=obj)

    def delete_queryset(self, request, queryset):
        for token in queryset:
            services.api_token_revoke(token=token)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    """Read only: the first answers to the API's POSTs sent with an ``Idempotency-Key``
    (``tasks.api.idempotency``), kept for ``IDEMPOTENCY_KEY_TTL_HOURS``."""

    list_display = ["key", "user", "request_method", "request_path", "created_at"]
    list_select_related = ["user"]
    search_fields = ["key", "user__username", "request_path"]
    list_filter = ["request_method", "response_status"]
    date_hierarchy = "created_at"
    fields = [
        "user",
        "key",
        "request_method",
        "request_path",
        "request_digest",
        "response_status",
        "response_body",
        "created_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class UserAdmin(BaseUserAdmin):
    inlines = [ProfileInline]
