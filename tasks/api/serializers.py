"""Serializers validate input and render output; the services do the writing."""

from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recurrence.describe import describe
from recurrence.series import effective_rule

from ..models import (
    MAX_DESCRIPTION_LENGTH,
    TASK_SYSTEM_FIELDS,
    Category,
    Priority,
    Profile,
    RecurrenceMode,
    SavedView,
    Tag,
    Task,
    validate_supported_datetime,
    validate_supported_timezone,
)
from ..quickadd import CHIP_KINDS, MAX_TEXT_LENGTH
from ..services import MAX_TAGS_PER_TASK, reject_unknown_fields
from .durations import IsoDurationField
from .exceptions import as_drf_validation_error

#: What a browser's HTML form adds beside the data: Django's CSRF token and the browsable
#: API's form controls (the "Raw data" form's media type and content, the method override).
FORM_CONTROL_FIELDS = frozenset({"csrfmiddlewaretoken", "_method", "_content", "_content_type"})


class StrictFieldsMixin:
    """Reject unknown keys in a write, so a typo like ``prority`` is a 400, not a no-op.

    Read-only fields sent back (e.g. the whole object in a PUT) are accepted and ignored,
    and so are a form's own controls in form-encoded input (never in JSON).
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            known = [*self.fields, *(FORM_CONTROL_FIELDS if isinstance(data, QueryDict) else ())]
            try:
                reject_unknown_fields(data, known)
            except DjangoValidationError as exc:
                raise as_drf_validation_error(exc) from exc
            if not isinstance(data, QueryDict):
                reject_wrong_json_types(self.fields, data)
        return super().to_internal_value(data)


#: The JSON type each kind of field takes (the first match counts): DRF alone would read
#: ``0`` as ``"0"``, ``"5"`` as ``5`` and ``"true"`` as ``true``, so ``{"name": 0}`` made a
#: tag named "0" where the schema says a string.
JSON_TYPES: tuple[tuple[type, type, str], ...] = (
    (serializers.BooleanField, bool, "Must be true or false."),
    (serializers.IntegerField, int, "Must be a whole number."),
    (serializers.PrimaryKeyRelatedField, int, "Must be a whole number (an id)."),
    (serializers.CharField, str, "Must be a string."),
    (serializers.ChoiceField, str, "Must be a string."),
    (serializers.DateTimeField, str, "Must be a string."),
    (serializers.DurationField, str, "Must be a string."),
    (serializers.ListField, list, "Must be a list."),
    (serializers.DictField, dict, "Must be an object."),
)


def _json_type_error(field: serializers.Field, value) -> str | None:
    for kind, expected, message in JSON_TYPES:
        if isinstance(field, kind):
            if isinstance(value, bool) and expected is not bool:  # a bool is an int to Python
                return message
            if not isinstance(value, expected):
                return message
            return _raw_length_error(field, value)
    return None


def _raw_length_error(field: serializers.Field, value) -> str | None:
    """A string longer than the field's ``max_length`` as sent, before DRF trims it: the
    schema's ``maxLength`` counts what the client sends, so the server counts the same."""
    max_length = getattr(field, "max_length", None)
    if isinstance(field, serializers.CharField) and max_length and len(value) > max_length:
        return field.error_messages["max_length"].format(max_length=max_length)
    return None


def reject_wrong_json_types(fields, data: dict) -> None:
    """A 400 naming each writable field whose JSON value has the wrong type or is a string
    longer than its ``max_length`` (null is left to the field), and each wrong item of a
    list of strings (``{"tags": {"0": [...]}}``)."""
    errors: dict = {}
    for name, value in data.items():
        field = fields.get(name)
        if field is None or field.read_only or value is None:
            continue
        if message := _json_type_error(field, value):
            errors[name] = [message]
        elif isinstance(field, serializers.ListField):
            items = {
                str(i): [message]
                for i, item in enumerate(value)
                if (message := _json_type_error(field.child, item))
            }
            if items:
                errors[name] = items
    if errors:
        raise serializers.ValidationError(errors)


class LocalDateTimeField(serializers.DateTimeField):
    """Keeps a naive input naive: the service reads it in the task's own time zone."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validators", [validate_supported_datetime])
        super().__init__(**kwargs)

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            return value
        return super().enforce_timezone(value)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "maxLength": 50},
        "maxItems": MAX_TAGS_PER_TASK,
    }
)
class TagNamesField(serializers.ListField):
    """Tags as a list of names; unknown names are created for the user."""

    child = serializers.CharField(max_length=50, allow_blank=False)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_TAGS_PER_TASK)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return [tag.name for tag in value.all()]


class UserCategoryField(serializers.PrimaryKeyRelatedField):
    """A category id, limited to the requesting user's categories."""

    default_error_messages = {"does_not_exist": "Category {pk_value} not found."}

    def get_queryset(self):
        request = self.context.get("request")
        if request is None or not request.user.is_authenticated:
            return Category.objects.none()
        return Category.objects.filter(user=request.user)


class TaskSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    category = UserCategoryField(allow_null=True, required=False)
    tags = TagNamesField(required=False)
    due_date = LocalDateTimeField(required=False, allow_null=True)
    remind_at = LocalDateTimeField(required=False, allow_null=True)
    remind_before = IsoDurationField(
        required=False,
        allow_null=True,
        help_text='Remind this long before the due date: ISO 8601, e.g. "PT30M", "P1D".',
    )
    recurrence_description = serializers.SerializerMethodField(
        help_text='The rule in words, e.g. "every 2 weeks on Monday and Friday".'
    )
    timezone = serializers.CharField(
        required=False,
        validators=[validate_supported_timezone],
        help_text="IANA time zone, e.g. Europe/Paris; defaults to your profile's.",
    )

    class Meta:
        model = Task
        fields = [
            "id",
            "title",
            "description",
            "completed",
            "completed_at",
            "priority",
            "due_date",
            "timezone",
            "category",
            "tags",
            "recurrence_rule",
            "recurrence_type",
            "recurrence_interval",
            "recurrence_mode",
            "remind_at",
            "remind_before",
            "reminder_sent",
            "next_occurrence_at",
            "last_triggered_at",
            "parent",
            "series",
            "occurrence",
            "recurrence_description",
            "created_at",
            "updated_at",
        ]
        read_only_fields = TASK_SYSTEM_FIELDS
        extra_kwargs = {
            "description": {
                "required": False,
                "allow_blank": True,
                "max_length": MAX_DESCRIPTION_LENGTH,
            }
        }

    @extend_schema_field(serializers.CharField())
    def get_recurrence_description(self, task: Task) -> str:
        rule = effective_rule(task)
        return describe(rule) if rule else ""

    def to_representation(self, instance):
        # Date-times are shown with the task's own UTC offset: 09:00-04:00, not 13:00Z.
        with timezone.override(instance.timezone):
            return super().to_representation(instance)


def task_create_kwargs(validated: dict) -> dict:
    """``TaskSerializer``'s validated data as ``services.task_create``'s keyword arguments."""
    data = dict(validated)
    if "timezone" in data:
        data["timezone_name"] = data.pop("timezone")
    return data


class CategorySerializer(StrictFieldsMixin, serializers.ModelSerializer):
    task_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Category
        fields = ["id", "name", "color", "task_count", "created_at"]
        read_only_fields = ["created_at"]
        # Uniqueness per user is checked by the service (case-insensitive).
        validators: list = []


class TagSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    task_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "name", "task_count", "created_at"]
        read_only_fields = ["created_at"]
        validators: list = []


class RegisterSerializer(StrictFieldsMixin, serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    def validate_username(self, value: str) -> str:
        user_model = get_user_model()
        field = user_model._meta.get_field("username")
        for validator in field.validators:
            validator(value)
        if user_model.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("This username is taken.")
        return value

    def validate(self, attrs):
        user = get_user_model()(username=attrs["username"], email=attrs["email"])
        try:
            password_validation.validate_password(attrs["password"], user)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": exc.messages}) from exc
        return attrs


#: A read-only field sent with another value than it has: a 400, never a silent no-op.
READ_ONLY_MESSAGE = "Read-only: it cannot be changed."


class ProfileSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """``PATCH /api/me/``: besides an unknown field, a changed ``id`` or ``username`` is a
    400 naming it (the account's own fields looked writable and answered 200 unchanged);
    the same values sent back, as ``GET /api/me/`` shows them, are accepted."""

    id = serializers.IntegerField(source="user.id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", required=False, allow_blank=True)
    timezone = serializers.CharField(required=False, validators=[validate_supported_timezone])

    class Meta:
        model = Profile
        fields = ["id", "username", "email", "timezone", "reminders_enabled"]

    def to_internal_value(self, data):
        if isinstance(data, dict) and self.instance is not None:
            shown = self.to_representation(self.instance)
            changed = sorted(
                name
                for name, field in self.fields.items()
                if field.read_only and name in data and str(data[name]) != str(shown[name])
            )
            if changed:
                raise serializers.ValidationError({name: [READ_ONLY_MESSAGE] for name in changed})
        return super().to_internal_value(data)


class SavedViewSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    filters = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text='GET /api/tasks/ query parameters, e.g. {"view": "today", '
        '"priority": "high,urgent", "ordering": "-priority"}.',
    )
    url = serializers.SerializerMethodField(help_text="The view's page in the web app.")

    class Meta:
        model = SavedView
        fields = ["id", "name", "filters", "url", "created_at"]
        read_only_fields = ["created_at"]
        validators: list = []

    def get_url(self, view: SavedView) -> str:
        from django.urls import reverse

        return reverse("saved-view", args=[view.pk])


class QuickAddSerializer(StrictFieldsMixin, serializers.Serializer):
    text = serializers.CharField(
        max_length=MAX_TEXT_LENGTH,
        help_text='One line, e.g. "Pay rent every month on the 1st at 9am #Home @bills p1" '
        "(see docs/quick-add.md).",
    )


class QuickAddChipSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CHIP_KINDS)
    label = serializers.CharField(help_text='e.g. "Tomorrow 18:00", "Urgent (p1)", "@bills".')


class QuickAddPreviewSerializer(serializers.Serializer):
    """What ``POST /api/tasks/quick-add/`` would create from the same text."""

    title = serializers.CharField()
    priority = serializers.ChoiceField(
        choices=Priority.choices, allow_null=True, help_text="null: not given (medium)."
    )
    due_date = serializers.DateTimeField(allow_null=True)
    timezone = serializers.CharField()
    category = serializers.IntegerField(
        source="category.pk", allow_null=True, help_text="Your existing category's id."
    )
    category_name = serializers.CharField(allow_null=True)
    category_is_new = serializers.BooleanField(help_text="The category would be created.")
    tags = serializers.ListField(child=serializers.CharField())
    recurrence_rule = serializers.CharField()
    recurrence_description = serializers.CharField()
    recurrence_mode = serializers.ChoiceField(choices=RecurrenceMode.choices)
    remind_at = serializers.DateTimeField(allow_null=True)
    remind_before = IsoDurationField(allow_null=True)
    occurrences = serializers.ListField(
        child=serializers.DateTimeField(), help_text="The first five due dates of a repeat."
    )
    chips = QuickAddChipSerializer(many=True)

    def to_representation(self, instance):
        with timezone.override(instance.timezone):  # date-times with the user's UTC offset
            return super().to_representation(instance)


class TaskImportSerializer(StrictFieldsMixin, serializers.Serializer):
    file = serializers.FileField(
        help_text="An iCalendar (.ics) file: its VTODO and VEVENT items become tasks "
        "(see docs/calendar-import.md)."
    )


class ImportedTaskSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's place among the file's items (1...).")
    id = serializers.IntegerField(help_text="The new task's id.")
    title = serializers.CharField()
    notes = serializers.ListField(
        child=serializers.CharField(), help_text="What of the item was not imported, and why."
    )


class AlreadyImportedSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's place among the file's items (1...).")
    uid = serializers.CharField(help_text="The item's UID.")
    summary = serializers.CharField(help_text="The item's SUMMARY ('' when it has none).")
    id = serializers.IntegerField(
        help_text="The task that already holds this UID (from an earlier import, or your own "
        "feed's task or series); nothing was created for the item."
    )


class SkippedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's place among the file's items (1...).")
    uid = serializers.CharField(help_text="The item's UID ('' when it has none).")
    summary = serializers.CharField(help_text="The item's SUMMARY ('' when it has none).")
    reason = serializers.CharField(
        help_text="Why the item was not imported, naming the value at fault (e.g. "
        "'DTSTART cannot be read: ...', 'recurrence_rule: ...')."
    )


class ImportReportSerializer(serializers.Serializer):
    created = ImportedTaskSerializer(many=True, help_text="The tasks created, in file order.")
    already_imported = AlreadyImportedSerializer(
        many=True,
        help_text="Items whose UID you already have a task for: importing a file again "
        "creates nothing twice.",
    )
    skipped = SkippedItemSerializer(
        many=True, help_text="Items not imported, each with the reason."
    )
