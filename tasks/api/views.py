"""REST API views: parse input, call one service or selector, render the result."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import Lower
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from recurrence.series import effective_rule, task_upcoming

from .. import services
from ..models import Category, SavedView, Tag, Task
from ..quickadd import parse_quick_add
from ..selectors import TaskFilterSet, task_filter, task_filters_given
from . import reading
from .idempotency import AtomicWriteMixin
from .pagination import CountedRows
from .recurrence import OccurrenceCountSerializer, OccurrencesSerializer
from .serializers import (
    CategorySerializer,
    ImportReportSerializer,
    ProfileSerializer,
    QuickAddPreviewSerializer,
    QuickAddSerializer,
    RegisterSerializer,
    SavedViewSerializer,
    TagSerializer,
    TaskImportSerializer,
    TaskSerializer,
    task_create_kwargs,
)
from .tokens import NewApiTokenSerializer, TokenLoginSerializer, token_response


@extend_schema_view(
    list=extend_schema(summary="List your tasks, filtered and sorted"),
    create=extend_schema(summary="Create a task"),
    retrieve=extend_schema(summary="Get a task"),
    update=extend_schema(summary="Replace a task"),
    partial_update=extend_schema(summary="Change some fields of a task"),
    destroy=extend_schema(summary="Delete a task"),
)
class TaskViewSet(AtomicWriteMixin, viewsets.ModelViewSet):
    queryset = Task.objects.none()  # for the schema; requests use get_queryset()
    serializer_class = TaskSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = TaskFilterSet

    def get_queryset(self):
        tasks = Task.objects.for_user(self.request.user)
        if self.action in ("complete", "reopen", "destroy"):
            return tasks  # the service reads what it needs, under the row's lock
        return tasks.with_relations()

    def filter_queryset(self, queryset):
        """The FilterSet (its form, its category choices) only when a filter or sort is
        given; without one it would only apply the default sort."""
        self.filterset = None
        if not self.filter_backends:  # the actions that take no filters (occurrences, ...)
            return queryset
        queryset, self.filterset = task_filter(
            queryset, user=self.request.user, params=self.request.query_params
        )
        return queryset

    def list(self, request, *args, **kwargs):
        rows = reading.task_rows(self.filter_queryset(Task.objects.for_user(request.user)))
        count = self.filterset.count_from_tag_links() if self.filterset else None
        page = self.paginate_queryset(rows if count is None else CountedRows(rows, count))
        return self.get_paginated_response(reading.task_representations(page, owner=request.user))

    def retrieve(self, request, *args, **kwargs):
        if task_filters_given(request.query_params):
            # A filter given to a detail applies as it does to a list (a 404 when the task
            # does not match, a 400 when the filter is invalid): DRF's get_object().
            rows = reading.task_rows(self.filter_queryset(Task.objects.for_user(request.user)))
            row = get_object_or_404(rows, pk=kwargs["pk"])
            return Response(reading.task_representations([row], owner=request.user)[0])
        # Only the default sort, meaningless for one row.
        try:
            task_id = int(kwargs["pk"])
        except ValueError:
            raise Http404 from None
        body = reading.task_representation(user=request.user, task_id=task_id)
        if body is None:
            raise Http404
        return Response(body)

    def perform_create(self, serializer):
        serializer.instance = services.task_create(
            user=self.request.user, **task_create_kwargs(serializer.validated_data)
        )

    def perform_update(self, serializer):
        serializer.instance, _ = services.task_update(
            task=serializer.instance, data=dict(serializer.validated_data)
        )

    def perform_destroy(self, instance):
        services.task_delete(task=instance)

    def _render(self, task: Task) -> Response:
        # The services return the task as stored, its tags loaded: no second read.
        return Response(self.get_serializer(task).data)

    @extend_schema(request=None, responses=TaskSerializer, summary="Mark a task completed")
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self._render(services.task_complete(task=self.get_object()))

    @extend_schema(request=None, responses=TaskSerializer, summary="Mark a task pending again")
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self._render(services.task_reopen(task=self.get_object()))

    @extend_schema(
        parameters=[OccurrenceCountSerializer],
        responses=OccurrencesSerializer,
        summary="This instance's occurrence and the next ones of its series",
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def occurrences(self, request, pk=None):
        params = OccurrenceCountSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        task = self.get_object()
        found = task_upcoming(task, count=params.validated_data["count"])
        return Response(
            OccurrencesSerializer(
                {"rule": effective_rule(task), "occurrences": found}, context={"task": task}
            ).data
        )

    @extend_schema(
        request=QuickAddSerializer,
        responses={201: TaskSerializer},
        summary="Create a task from one line of text",
        description='E.g. {"text": "Pay rent every month on the 1st at 9am #Home @bills p1"}: '
        "dates and times in your time zone, a repeat, #category (created if new), @tags, "
        "p1-p4 and reminders are read from the text; the rest is the title. Every error "
        "is reported on `text`.",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="quick-add",
        filter_backends=[],
        pagination_class=None,
    )
    def quick_add(self, request):
        params = QuickAddSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        task = services.task_quick_add(user=request.user, text=params.validated_data["text"])
        return Response(self.get_serializer(task).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=QuickAddSerializer,
        responses=QuickAddPreviewSerializer,
        summary="Show what quick add would create from a line of text (nothing is saved)",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="parse",
        filter_backends=[],
        pagination_class=None,
    )
    def quick_add_parse(self, request):
        params = QuickAddSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        parsed = parse_quick_add(params.validated_data["text"], user=request.user)
        parsed.validate()
        return Response(QuickAddPreviewSerializer(parsed).data)

    @extend_schema(
        request={"multipart/form-data": TaskImportSerializer},
        responses={
            201: OpenApiResponse(ImportReportSerializer, description="Some tasks were created."),
            200: OpenApiResponse(ImportReportSerializer, description="No task was created."),
        },
        summary="Create tasks from an iCalendar (.ics) file",
        description="Upload the file as the multipart field `file`. Each VTODO and VEVENT "
        "becomes a task (title, description, due date and zone, repeat, priority, tags, "
        "reminder: docs/calendar-import.md); each item Tideline refuses, or with an "
        "unreadable date or rule, is listed in `skipped` with the reason, the others are "
        "created. An item whose UID you already have (an earlier import of the file, or your "
        "own feed) is listed in `already_imported`: importing a file again creates nothing "
        "twice. A file that is not iCalendar, is over 1 MB or has over 500 items is a 400 "
        "on `file`.",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        filter_backends=[],
        pagination_class=None,
        parser_classes=[MultiPartParser],
    )
    def import_ical(self, request):
        params = TaskImportSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        upload = params.validated_data["file"]
        if upload.size > services.MAX_ICAL_BYTES:  # refused before reading it
            raise exceptions.ValidationError(
                {"file": [f"The file is larger than {services.MAX_ICAL_BYTES:,} bytes."]}
            )
        report = services.tasks_import_ical(user=request.user, data=upload.read())
        created = status.HTTP_201_CREATED if report.created else status.HTTP_200_OK
        return Response(ImportReportSerializer(report).data, status=created)


class CategoryViewSet(AtomicWriteMixin, viewsets.ModelViewSet):
    queryset = Category.objects.none()
    serializer_class = CategorySerializer

    def get_queryset(self):
        # Meta.ordering is not applied to an aggregating query: order explicitly, so pages
        # are stable and names read alphabetically.
        return (
            Category.objects.filter(user=self.request.user)
            .annotate(task_count=Count("tasks"))
            .order_by(Lower("name"), "id")
        )

    def perform_create(self, serializer):
        serializer.instance = services.category_create(
            user=self.request.user, **serializer.validated_data
        )
        serializer.instance.task_count = 0

    def perform_update(self, serializer):
        serializer.instance = services.category_update(
            category=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.category_delete(category=instance)


class TagViewSet(AtomicWriteMixin, viewsets.ModelViewSet):
    queryset = Tag.objects.none()
    serializer_class = TagSerializer

    def get_queryset(self):
        return (
            Tag.objects.filter(user=self.request.user)
            .annotate(task_count=Count("tasks"))
            .order_by(Lower("name"), "id")
        )

    def perform_create(self, serializer):
        serializer.instance = services.tag_create(
            user=self.request.user, **serializer.validated_data
        )
        serializer.instance.task_count = 0

    def perform_update(self, serializer):
        serializer.instance = services.tag_update(
            tag=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.tag_delete(tag=instance)


@extend_schema_view(
    list=extend_schema(summary="List your saved views"),
    create=extend_schema(summary="Save a view (a named filter and sort of your tasks)"),
)
class SavedViewViewSet(AtomicWriteMixin, viewsets.ModelViewSet):
    queryset = SavedView.objects.none()
    serializer_class = SavedViewSerializer

    def get_queryset(self):
        return SavedView.objects.filter(user=self.request.user).order_by(Lower("name"), "id")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.saved_view_create(
            user=self.request.user, name=data.get("name", ""), filters=data.get("filters", {})
        )

    def perform_update(self, serializer):
        serializer.instance = services.saved_view_update(
            view=serializer.instance, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.saved_view_delete(view=instance)


class RegisterView(generics.GenericAPIView):
    serializer_class = RegisterSerializer
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(responses={201: ProfileSerializer}, summary="Create an account", auth=[])
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        return Response(ProfileSerializer(user.profile).data, status=status.HTTP_201_CREATED)


@extend_schema(
    responses={
        200: NewApiTokenSerializer,
        400: OpenApiResponse(description="Bad credentials, or a field naming its error"),
    },
    summary="Exchange username and password for a new API token",
    auth=[],
)
class TokenView(generics.GenericAPIView):
    """Creates a named token (``name``, default "API token (date)") that expires after
    ``API_TOKEN_DEFAULT_EXPIRY_DAYS`` unless ``expires_in_days`` or ``expires_at`` says
    otherwise; answers 200 with its secret, as before named tokens. A login refused by
    django-axes (too many failures for this username from this address) is a 429 with
    ``Retry-After``, even with the right password."""

    serializer_class = TokenLoginSerializer
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except exceptions.ValidationError:
            if getattr(request, "axes_locked_out", False):
                raise exceptions.Throttled(
                    wait=settings.AXES_COOLOFF_TIME.total_seconds(),
                    detail="Too many failed logins: try again later.",
                ) from None
            raise
        data = serializer.validated_data
        token, secret = services.api_token_create(
            user=data["user"],
            name=data["name"],
            expires_at=data.get("expires_at"),
            expires_in_days=data.get("expires_in_days"),
        )
        return token_response(token, secret, status.HTTP_200_OK)


class MeView(AtomicWriteMixin, generics.RetrieveUpdateAPIView):
    serializer_class = ProfileSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        return services.profile_get(user=self.request.user)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.update(data.pop("user", {}))
        serializer.instance = services.profile_update(user=self.request.user, data=data)
