"""REST endpoints for recurrence: a live preview of a rule that is not saved yet, and the
serializers of a task's upcoming occurrences."""

from __future__ import annotations

import zoneinfo

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from recurrence.describe import describe
from recurrence.engine import recurrence_preview
from recurrence.rules import EXPANSION_BUDGET, normalise_rule

from ..models import RecurrenceMode, validate_supported_timezone
from .serializers import LocalDateTimeField, StrictFieldsMixin

MAX_PREVIEW = 50
CUT_OFF_REASON = (
    f"The list stops here: finding the next occurrence of this rule needs more than "
    f"{EXPANSION_BUDGET:,} candidate date-times to be searched."
)


class OccurrenceCountSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=MAX_PREVIEW, default=5)


class WallClockDateTimeField(serializers.DateTimeField):
    """An occurrence shown in its own zone, with that day's UTC offset (09:00-05:00)."""

    def to_representation(self, value):
        with timezone.override(value.tzinfo):
            return super().to_representation(value)


class OccurrencesSerializer(serializers.Serializer):
    """``occurrences`` is an ``Occurrences`` list: ``truncated`` says the search was cut off
    (the series may go on) and ``truncated_reason`` why; both are false/empty otherwise."""

    rule = serializers.CharField()
    description = serializers.SerializerMethodField()
    occurrences = serializers.ListField(child=WallClockDateTimeField())
    truncated = serializers.SerializerMethodField()
    truncated_reason = serializers.SerializerMethodField()

    def get_description(self, obj) -> str:
        return describe(obj["rule"]) if obj["rule"] else ""

    def get_truncated(self, obj) -> bool:
        return obj["occurrences"].cut_off

    def get_truncated_reason(self, obj) -> str:
        return CUT_OFF_REASON if obj["occurrences"].cut_off else ""


class PreviewSerializer(StrictFieldsMixin, serializers.Serializer):
    rule = serializers.CharField(max_length=1000, help_text="RRULE, with or without 'RRULE:'.")
    due_date = LocalDateTimeField(
        required=False, help_text="The first instance's due date (DTSTART); default now."
    )
    timezone = serializers.CharField(required=False, validators=[validate_supported_timezone])
    mode = serializers.ChoiceField(choices=RecurrenceMode.choices, default="schedule")
    count = serializers.IntegerField(min_value=1, max_value=MAX_PREVIEW, default=5)


def recurrence_preview_data(*, user, data: dict) -> dict:
    """The preview of a rule for ``PreviewSerializer``'s validated ``data``: the rule, in
    words, and its next occurrences from ``due_date`` (default now) in ``timezone`` (default
    the user's). Raises DRF's ``ValidationError`` on ``rule``."""
    profile = getattr(user, "profile", None)
    tz_name = data.get("timezone") or (profile.timezone if profile else "UTC")
    start = data.get("due_date") or timezone.now().replace(second=0, microsecond=0)
    try:
        found = recurrence_preview(
            rule=data["rule"], start=start, tz_name=tz_name, count=data["count"]
        )
    except DjangoValidationError as exc:
        raise serializers.ValidationError({"rule": exc.messages}) from exc
    rule = normalise_rule(data["rule"])
    with timezone.override(zoneinfo.ZoneInfo(tz_name)):
        return OccurrencesSerializer({"rule": rule, "occurrences": found}).data


class RecurrencePreviewView(APIView):
    """``POST /api/recurrence/preview/``: validate a rule and list its next occurrences."""

    @extend_schema(
        request=PreviewSerializer,
        responses=OccurrencesSerializer,
        summary="Preview a recurrence rule before saving it",
    )
    def post(self, request):
        params = PreviewSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        return Response(recurrence_preview_data(user=request.user, data=params.validated_data))
