"""The task form: every field the API has, with dates in the task's own time zone.

The form parses and checks input shapes only; the rules (a reminder before its due date, a
valid RRULE, a category of your own...) are the service's, and its errors are shown beside
the field they name (``service_field_map`` says which), in the API's words.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from recurrence import presets
from recurrence.describe import describe
from recurrence.engine import recurrence_preview
from recurrence.rules import normalise_rule
from recurrence.series import effective_rule
from todo_project.timezones import to_local_naive

from ..models import (
    Category,
    Priority,
    RecurrenceMode,
    Tag,
    Task,
    available_timezones,
    validate_supported_datetime,
    validate_supported_timezone,
)
from ..selectors import user_timezone

#: How many upcoming dates the recurrence preview lists.
PREVIEW_COUNT = 5

WEEKDAY_CHOICES = [
    ("MO", "Monday"),
    ("TU", "Tuesday"),
    ("WE", "Wednesday"),
    ("TH", "Thursday"),
    ("FR", "Friday"),
    ("SA", "Saturday"),
    ("SU", "Sunday"),
]
END_CHOICES = [
    (presets.END_NEVER, "Never"),
    (presets.END_COUNT, "After a number of times"),
    (presets.END_UNTIL, "On a date"),
]
REMINDER_NONE, REMINDER_AT, REMINDER_BEFORE = "none", "at", "before"
REMINDER_CHOICES = [
    (REMINDER_NONE, "No reminder"),
    (REMINDER_AT, "At a date and time"),
    (REMINDER_BEFORE, "Before the due date"),
]
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
UNIT_CHOICES = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")]

#: The form fields that say how a task repeats.
RECURRENCE_FIELDS = (
    "repeat",
    "interval",
    "weekdays",
    "custom_rule",
    "end",
    "end_count",
    "end_until",
    "mode",
)
REMINDER_FIELDS = (
    "reminder",
    "remind_at_date",
    "remind_at_time",
    "remind_before_amount",
    "remind_before_unit",
)
DUE_FIELDS = ("due_date", "due_time", "timezone")


def _preset_choices(due: dt.date | None) -> list[tuple[str, str]]:
    """The repeat options, worded from the due date when there is one."""
    if due is None:
        monthly_day = "Monthly on the due date's day"
        monthly_weekday = "Monthly on the due date's weekday (e.g. the second Tuesday)"
        yearly = "Yearly"
    else:
        monthly_day = f"Monthly on the {_ordinal(due.day)}"
        monthly_weekday = f"Monthly on the {presets.nth_weekday_words(due)}"
        yearly = f"Yearly on {due.day} {due:%B}"
    return [
        (presets.NONE, "Does not repeat"),
        (presets.DAILY, "Daily"),
        (presets.WEEKDAYS_PRESET, "Every weekday (Monday to Friday)"),
        (presets.WEEKLY, "Weekly on chosen days"),
        (presets.MONTHLY_DAY, monthly_day),
        (presets.MONTHLY_WEEKDAY, monthly_weekday),
        (presets.YEARLY, yearly),
        (presets.CUSTOM, "Custom rule (RRULE)"),
    ]


def _ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


@dataclass
class Preview:
    """The recurrence preview: the rule in words and its next dates, or why there are none."""

    rule: str = ""
    description: str = ""
    occurrences: list[dt.datetime] = field(default_factory=list)
    error: str = ""
    zone: str = ""
    from_now: bool = False

    @property
    def ends(self) -> bool:
        """The series ends within the dates shown."""
        return 0 < len(self.occurrences) < PREVIEW_COUNT


class TaskForm(forms.Form):
    title = forms.CharField(
        max_length=255,
        error_messages={
            "required": "This field may not be blank.",
            "max_length": "Ensure this field has no more than 255 characters.",
        },
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    priority = forms.ChoiceField(
        choices=Priority.choices,
        initial=Priority.MEDIUM,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": '"%(value)s" is not a valid choice.'},
    )
    due_date = forms.DateField(
        label="Due date",
        required=False,
        validators=[validate_supported_datetime],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    due_time = forms.TimeField(
        label="Time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    timezone = forms.CharField(
        label="Time zone",
        required=False,
        max_length=64,
        validators=[validate_supported_timezone],
        widget=forms.TextInput(
            attrs={"list": "timezone-names", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    category = forms.ModelChoiceField(
        queryset=Category.objects.none(),
        required=False,
        empty_label="No category",
        error_messages={"invalid_choice": "Category %(value)s not found."},
    )
    tags = forms.CharField(
        required=False,
        help_text="Separate tags with commas; a new name creates the tag.",
        widget=forms.TextInput(attrs={"list": "tag-names", "autocomplete": "off"}),
    )

    repeat = forms.ChoiceField(label="Repeat", choices=_preset_choices(None), initial="none")
    interval = forms.IntegerField(
        label="Every",
        required=False,
        min_value=1,
        max_value=1000,
        initial=1,
        help_text="1 = every day, week, month or year; 2 = every other one.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    weekdays = forms.MultipleChoiceField(
        label="On",
        required=False,
        choices=WEEKDAY_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )
    custom_rule = forms.CharField(
        label="Rule",
        required=False,
        max_length=1000,
        help_text="An RFC 5545 RRULE, e.g. FREQ=MONTHLY;BYDAY=1FR (the first Friday).",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    end = forms.ChoiceField(
        label="Ends", choices=END_CHOICES, initial=presets.END_NEVER, widget=forms.RadioSelect
    )
    end_count = forms.IntegerField(label="Times", required=False, min_value=1, max_value=10_000)
    end_until = forms.DateField(
        label="Last date",
        required=False,
        validators=[validate_supported_datetime],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    mode = forms.ChoiceField(
        label="Next one is due",
        choices=RecurrenceMode.choices,
        initial=RecurrenceMode.SCHEDULE,
        widget=forms.RadioSelect,
        help_text="After completion: counted from the day you complete this one.",
    )

    reminder = forms.ChoiceField(
        label="Reminder", choices=REMINDER_CHOICES, initial=REMINDER_NONE, widget=forms.RadioSelect
    )
    remind_at_date = forms.DateField(
        label="Reminder date",
        required=False,
        validators=[validate_supported_datetime],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    remind_at_time = forms.TimeField(
        label="Reminder time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    remind_before_amount = forms.IntegerField(
        label="How long before", required=False, min_value=0, max_value=10_000
    )
    remind_before_unit = forms.ChoiceField(
        label="Unit", choices=UNIT_CHOICES, initial="hours", required=False
    )

    def __init__(self, *args, user, task: Task | None = None, **kwargs) -> None:
        self.user = user
        self.task = task
        self.default_zone = user_timezone(user).key
        if task is not None:
            kwargs.setdefault("initial", initial_from_task(task))
        else:
            kwargs.setdefault("initial", {"timezone": self.default_zone})
        super().__init__(*args, **kwargs)
        self.fields["due_time"].help_text = f"Without a time: {settings.DEFAULT_DUE_TIME:%H:%M}."
        self.fields["category"].queryset = Category.objects.filter(user=user)
        self.fields["repeat"].choices = _preset_choices(self._shown_due_date())
        self.recurrence_rule: str | None = None
        self.due_local: dt.datetime | None = None

    # --- what the template shows --------------------------------------------------------

    def _shown_due_date(self) -> dt.date | None:
        """The due date the form shows (the submitted one when bound), for the labels."""
        if not self.is_bound:
            return self.initial.get("due_date")
        try:
            return self.fields["due_date"].clean(self.data.get("due_date"))
        except ValidationError:
            return None

    @property
    def zone_name(self) -> str:
        """The task's zone as the form shows it (the submitted one when valid)."""
        name = (self["timezone"].value() or "").strip()
        return name if name in available_timezones() else self.default_zone

    def tag_suggestions(self) -> list[str]:
        return list(Tag.objects.filter(user=self.user).values_list("name", flat=True))

    # --- cleaning -------------------------------------------------------------------------

    def clean_timezone(self) -> str:
        return self.cleaned_data["timezone"].strip() or self.default_zone

    def clean_tags(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["tags"].split(",") if name.strip()]

    def clean_custom_rule(self) -> str:
        return self.cleaned_data["custom_rule"].strip()

    def clean(self) -> dict:
        data = super().clean()
        tz_name = data.get("timezone", self.default_zone)
        self.due_local = self._due_local(data)
        self._clean_recurrence(data, tz_name)
        self._clean_reminder(data)
        return data

    def _due_local(self, data: dict) -> dt.datetime | None:
        day, time = data.get("due_date"), data.get("due_time")
        if day is None:
            if time is not None and "due_date" not in self.errors:
                self.add_error("due_date", "Enter a date for this time.")
            return None
        return dt.datetime.combine(day, time or settings.DEFAULT_DUE_TIME)

    def _clean_recurrence(self, data: dict, tz_name: str) -> None:
        preset = data.get("repeat")
        if preset is None:
            return
        end = data.get("end", presets.END_NEVER)
        if preset not in (presets.NONE, presets.CUSTOM):  # the end belongs to the presets
            if end == presets.END_COUNT and data.get("end_count") is None:
                self._require("end_count", "Enter how many times.")
            if end == presets.END_UNTIL and data.get("end_until") is None:
                self._require("end_until", "Enter the last date.")
        choice = presets.RecurrenceChoice(
            preset=preset,
            interval=data.get("interval") or 1,
            weekdays=tuple(data.get("weekdays") or ()),
            custom_rule=data.get("custom_rule", ""),
            end=end,
            count=data.get("end_count"),
            until=data.get("end_until"),
        )
        try:
            self.recurrence_rule = presets.build_rule(
                choice, due_local=self.due_local, tz_name=tz_name
            )
        except ValidationError as exc:
            self.add_error("custom_rule" if preset == presets.CUSTOM else "repeat", exc.messages)

    def _clean_reminder(self, data: dict) -> None:
        kind = data.get("reminder")
        data["remind_at"] = data["remind_before"] = None
        if kind == REMINDER_AT:
            day, time = data.get("remind_at_date"), data.get("remind_at_time")
            if day is None:
                self._require("remind_at_date", "Enter the reminder's date.")
            if time is None:
                self._require("remind_at_time", "Enter the reminder's time.")
            if day is not None and time is not None:
                data["remind_at"] = dt.datetime.combine(day, time)
        elif kind == REMINDER_BEFORE:
            amount = data.get("remind_before_amount")
            if amount is None:
                self._require("remind_before_amount", "Enter how long before the due date.")
            else:
                unit = data.get("remind_before_unit") or "hours"
                data["remind_before"] = dt.timedelta(seconds=amount * UNIT_SECONDS[unit])

    def _require(self, name: str, message: str) -> None:
        if name not in self.errors:
            self.add_error(name, message)

    # --- talking to the service -----------------------------------------------------------

    def create_kwargs(self) -> dict:
        """Keyword arguments for ``services.task_create``."""
        data = self.cleaned_data
        return {
            "title": data["title"],
            "description": data["description"],
            "priority": data["priority"],
            "due_date": self.due_local,
            "timezone_name": data["timezone"],
            "category": data["category"],
            "tags": data["tags"],
            "recurrence_rule": self.recurrence_rule,
            "recurrence_mode": data["mode"],
            "remind_at": data["remind_at"],
            "remind_before": data["remind_before"],
        }

    def update_data(self) -> dict:
        """The ``services.task_update`` data for what the user changed.

        Untouched fields are left out, so a rule stored in another spelling (or as a
        ``recurrence_type``) or a due date with seconds is never rewritten by a save.
        Dates and times are read in the submitted zone, so a new zone moves them with it.
        """
        data, changed = self.cleaned_data, set(self.changed_data)
        update = {
            name: data[name]
            for name in ("title", "description", "priority", "category", "tags")
            if name in changed
        }
        if "mode" in changed:
            update["recurrence_mode"] = data["mode"]
        due_changed = bool(changed & set(DUE_FIELDS))
        if due_changed:
            update["due_date"] = self.due_local
            update["timezone"] = data["timezone"]
        if changed & set(REMINDER_FIELDS) or "timezone" in changed:
            if data["reminder"] == REMINDER_BEFORE:
                update["remind_before"] = data["remind_before"]
            else:
                update["remind_at"] = data["remind_at"]
                if data["reminder"] == REMINDER_NONE:
                    update["remind_before"] = None
        rule_changed = bool(changed & set(RECURRENCE_FIELDS) - {"mode"})
        follows_due = due_changed and data["repeat"] in presets.DAY_PRESETS
        until_moves = "timezone" in changed and data["end"] == presets.END_UNTIL
        touched = rule_changed or follows_due or until_moves
        if touched and self.recurrence_rule != effective_rule(self.task):
            update.update(
                recurrence_rule=self.recurrence_rule,
                recurrence_type="none",
                recurrence_interval=1,
            )
        return update

    def service_field_map(self) -> dict[str, str]:
        """The form field that shows a service field's errors, where the names differ (for
        ``common.add_service_errors``); it depends on the repeat and reminder chosen."""
        data = getattr(self, "cleaned_data", {})
        reminder = data.get("reminder")
        return {
            "recurrence_rule": "custom_rule" if data.get("repeat") == presets.CUSTOM else "repeat",
            "recurrence_type": "repeat",
            "recurrence_interval": "interval",
            "recurrence_mode": "mode",
            "remind_at": "remind_at_date" if reminder == REMINDER_AT else "reminder",
            "remind_before": "remind_before_amount" if reminder == REMINDER_BEFORE else "reminder",
        }

    # --- the live preview -------------------------------------------------------------------

    def preview(self) -> Preview:
        """The rule in words and its next dates in the task's zone (after validation)."""
        zone = self.zone_name
        if not self.is_bound:
            rule = normalise_rule(effective_rule(self.task)) if self.task else ""
            day, time = self.initial.get("due_date"), self.initial.get("due_time")
            due_local = dt.datetime.combine(day, time or settings.DEFAULT_DUE_TIME) if day else None
            return _preview(rule, due_local, zone)
        problems = [
            message
            for name in ("due_date", "due_time", "timezone", *RECURRENCE_FIELDS)
            for message in self.errors.get(name, ())
        ]
        if problems or self.recurrence_rule is None:
            return Preview(error=" ".join(problems) or "Check the repeat options.", zone=zone)
        return _preview(self.recurrence_rule, self.due_local, zone)

    def keep_only_errors_of(self, names: tuple[str, ...]) -> None:
        """Drop the other fields' errors (a preview is not a save: no "title required")."""
        for name in list(self.errors):
            if name not in names:
                del self.errors[name]


def _preview(rule: str, due_local: dt.datetime | None, zone: str) -> Preview:
    """What the preview shows for a rule, from the same service as the API's preview."""
    if not rule:
        return Preview(zone=zone)
    start = due_local or timezone.now().replace(second=0, microsecond=0)
    try:
        dates = recurrence_preview(rule=rule, start=start, tz_name=zone, count=PREVIEW_COUNT)
    except ValidationError as exc:
        return Preview(rule=rule, error=" ".join(exc.messages), zone=zone)
    return Preview(
        rule=rule,
        description=describe(rule),
        occurrences=dates,
        zone=zone,
        from_now=due_local is None,
    )


def initial_from_task(task: Task) -> dict:
    """The form's values for a task: wall-clock dates and times in the task's own zone."""
    tz_name = task.timezone
    due_local = to_local_naive(task.due_date, tz_name) if task.due_date else None
    choice = presets.choice_from_rule(effective_rule(task), due_local=due_local, tz_name=tz_name)
    initial = {
        "title": task.title,
        "description": task.description,
        "priority": task.priority,
        "due_date": due_local.date() if due_local else None,
        "due_time": due_local.time().replace(second=0, microsecond=0) if due_local else None,
        "timezone": tz_name,
        "category": task.category_id,
        "tags": ", ".join(task.tag_names()),
        "repeat": choice.preset,
        "interval": choice.interval,
        "weekdays": list(choice.weekdays),
        "custom_rule": choice.custom_rule,
        "end": choice.end,
        "end_count": choice.count,
        "end_until": choice.until,
        "mode": task.recurrence_mode,
        "reminder": REMINDER_NONE,
    }
    if task.remind_before is not None:
        seconds = int(task.remind_before.total_seconds())
        unit = next(
            (u for u in ("days", "hours", "minutes") if seconds % UNIT_SECONDS[u] == 0), "minutes"
        )
        initial.update(
            reminder=REMINDER_BEFORE,
            remind_before_amount=seconds // UNIT_SECONDS[unit],
            remind_before_unit=unit,
        )
    elif task.remind_at is not None:
        remind_local = task.remind_at.astimezone(zoneinfo.ZoneInfo(tz_name))
        initial.update(
            reminder=REMINDER_AT,
            remind_at_date=remind_local.date(),
            remind_at_time=remind_local.time().replace(second=0, microsecond=0, tzinfo=None),
        )
    return initial
