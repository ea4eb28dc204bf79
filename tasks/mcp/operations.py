"""What each MCP tool does, in plain synchronous Django, the way the REST API does it: the
API's serializers validate the input and render the tasks, the services write, the selectors
read, and every query starts from the user. A refusal is ``Refused`` carrying the body the API
would answer with (``{"priority": ["..."]}``, ``{"detail": "Task 7 not found."}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import InvalidPage, Page, Paginator
from django.core.signals import request_finished, request_started
from django.db import transaction
from rest_framework import serializers

from todo_project.outage import is_database_unavailable

from .. import selectors, services
from ..api import reading
from ..api.exceptions import as_drf_validation_error
from ..api.pagination import CountedRows
from ..api.recurrence import PreviewSerializer, recurrence_preview_data
from ..api.serializers import (
    CategorySerializer,
    QuickAddSerializer,
    SavedViewSerializer,
    TagSerializer,
    TaskSerializer,
    task_create_kwargs,
)
from ..models import SavedView, Task

DATABASE_UNAVAILABLE = {
    "detail": "The database is unavailable; try again shortly.",
    "code": "database_unavailable",
}


class Refused(Exception):
    """The tool refuses: ``detail`` says why, as the API's error body would."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


def as_request(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` framed as Django frames a request (``request_started``
    and ``request_finished``: connections past their age or broken are closed, the
    background relay waits for it); a database out of reach is refused as the API's 503."""
    request_started.send(sender=Refused)
    try:
        return function(*args, **kwargs)
    except Exception as exc:
        if is_database_unavailable(exc):
            raise Refused(DATABASE_UNAVAILABLE) from exc
        raise
    finally:
        request_finished.send(sender=Refused)


def run_as(user_id: int, operation: Callable[..., Any], /, **kwargs: Any) -> Any:
    """``operation(user=..., **kwargs)`` for the active user ``user_id``, as a request."""

    def run() -> Any:
        user = get_user_model().objects.select_related("profile").filter(pk=user_id).first()
        if user is None or not user.is_active:
            raise Refused({"detail": "User inactive or deleted."})
        return operation(user=user, **kwargs)

    return as_request(run)


def _context(user) -> dict:
    """The serializers' context: they read the user from a request (``UserCategoryField``)."""
    return {"request": SimpleNamespace(user=user)}


def _validated(serializer: serializers.Serializer) -> dict:
    if not serializer.is_valid():
        raise Refused(serializer.errors)
    return serializer.validated_data


@contextmanager
def _as_refusals() -> Iterator[None]:
    """The services' and selectors' validation errors as the API reports them."""
    try:
        yield
    except DjangoValidationError as exc:
        raise Refused(as_drf_validation_error(exc).detail) from exc
    except serializers.ValidationError as exc:
        raise Refused(exc.detail) from exc


def _not_found(task_id: int) -> Refused:
    return Refused({"detail": f"Task {task_id} not found."})


def _task(user, task_id: int) -> Task:
    """The user's task (another user's does not exist)."""
    try:
        return Task.objects.for_user(user).get(pk=task_id)
    except Task.DoesNotExist:
        raise _not_found(task_id) from None


def _task_data(task: Task, user) -> dict:
    return dict(TaskSerializer(task, context=_context(user)).data)


def _query(filters: Mapping[str, Any]) -> dict[str, str]:
    """Tool arguments as the query string ``GET /api/tasks/`` takes: true/false, lists
    comma-separated, absent values left out."""
    query: dict[str, str] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list | tuple):
            value = ",".join(str(item) for item in value)
        query[key] = str(value)
    return query


def _page(rows, *, page: int, page_size: int | None) -> Page:
    """One page of ``rows``: ``page_size`` within the API's bounds (default its own)."""
    size = settings.API_PAGE_SIZE if page_size is None else page_size
    if not 1 <= size <= settings.API_MAX_PAGE_SIZE:
        raise Refused(
            {"page_size": [f"Must be a whole number from 1 to {settings.API_MAX_PAGE_SIZE}."]}
        )
    paginator = Paginator(rows, size)
    try:
        return paginator.page(page)
    except InvalidPage:
        raise Refused(
            {"page": [f"There is no page {page}: the pages are 1 to {paginator.num_pages}."]}
        ) from None


def _listing(page: Page, results: list) -> dict:
    return {
        "count": page.paginator.count,
        "page": page.number,
        "pages": page.paginator.num_pages,
        "next_page": page.next_page_number() if page.has_next() else None,
        "results": results,
    }


# --- tasks ----------------------------------------------------------------------------------


def list_tasks(
    *,
    user,
    filters: Mapping[str, Any],
    saved_view: int | None = None,
    page: int = 1,
    page_size: int | None = None,
) -> dict:
    """``GET /api/tasks/`` with ``filters`` (its query parameters); a saved view's filters
    under them."""
    query = _query(filters)
    if saved_view is not None:
        try:
            view = selectors.saved_view_get(user=user, view_id=saved_view)
        except SavedView.DoesNotExist:
            raise Refused({"saved_view": [f"Saved view {saved_view} not found."]}) from None
        query = {**view.filters, **query}
    with _as_refusals():
        tasks, filterset = selectors.task_filter(
            Task.objects.for_user(user), user=user, params=query
        )
    count = filterset.count_from_tag_links() if filterset else None
    rows = reading.task_rows(tasks)
    found = _page(
        rows if count is None else CountedRows(rows, count), page=page, page_size=page_size
    )
    return _listing(found, reading.task_representations(found.object_list, owner=user))


def get_task(*, user, task_id: int) -> dict:
    """``GET /api/tasks/{id}/``."""
    body = reading.task_representation(user=user, task_id=task_id)
    if body is None:
        raise _not_found(task_id)
    return body


def add_task(*, user, text: str | None, fields: Mapping[str, Any]) -> dict:
    """``POST /api/tasks/quick-add/`` with ``text``, or ``POST /api/tasks/`` with ``fields``."""
    if text is not None and fields:
        raise Refused(
            {"text": ["Give either the text to quick add or the task's fields, not both."]}
        )
    with transaction.atomic(), _as_refusals():
        if text is not None:
            data = _validated(QuickAddSerializer(data={"text": text}))
            task = services.task_quick_add(user=user, text=data["text"])
        else:
            data = _validated(TaskSerializer(data=dict(fields), context=_context(user)))
            task = services.task_create(user=user, **task_create_kwargs(data))
        return _task_data(task, user)


def update_task(*, user, task_id: int, changes: Mapping[str, Any]) -> dict:
    """``PATCH /api/tasks/{id}/`` with ``changes``."""
    with transaction.atomic(), _as_refusals():
        task = _task(user, task_id)
        serializer = TaskSerializer(task, data=dict(changes), partial=True, context=_context(user))
        task, _ = services.task_update(task=task, data=dict(_validated(serializer)))
        return _task_data(task, user)


def complete_task(*, user, task_id: int) -> dict:
    """``POST /api/tasks/{id}/complete/``: a repeating task answers with its next due date
    (``next_occurrence_at``); its next instance is created just after."""
    with transaction.atomic(), _as_refusals():
        return _task_data(services.task_complete(task=_task(user, task_id)), user)


def reopen_task(*, user, task_id: int) -> dict:
    """``POST /api/tasks/{id}/reopen/``."""
    with transaction.atomic(), _as_refusals():
        return _task_data(services.task_reopen(task=_task(user, task_id)), user)


def delete_task(*, user, task_id: int) -> dict:
    """``DELETE /api/tasks/{id}/``."""
    with transaction.atomic(), _as_refusals():
        services.task_delete(task=_task(user, task_id))
    return {"deleted": task_id}


def preview_recurrence(*, user, arguments: Mapping[str, Any]) -> dict:
    """``POST /api/recurrence/preview/``."""
    data = _validated(PreviewSerializer(data=dict(arguments)))
    with _as_refusals():
        return dict(recurrence_preview_data(user=user, data=data))


# --- labels and views -----------------------------------------------------------------------


def list_categories(*, user, page: int = 1, page_size: int | None = None) -> dict:
    """The user's categories by name, with their task counts (all, and pending)."""
    found = _page(selectors.category_list_with_counts(user=user), page=page, page_size=page_size)
    return _listing(
        found,
        [
            {**CategorySerializer(category).data, "pending_count": category.pending_count}
            for category in found.object_list
        ],
    )


def list_tags(*, user, page: int = 1, page_size: int | None = None) -> dict:
    """The user's tags by name, with their task counts (all, and pending)."""
    found = _page(selectors.tag_list_with_counts(user=user), page=page, page_size=page_size)
    return _listing(
        found,
        [
            {**TagSerializer(tag).data, "pending_count": tag.pending_count}
            for tag in found.object_list
        ],
    )


def list_saved_views(*, user) -> list[dict]:
    """The user's saved views (``GET /api/views/``), at most the API's largest page."""
    views = selectors.saved_view_list(user=user)[: settings.API_MAX_PAGE_SIZE]
    return list(SavedViewSerializer(views, many=True).data)
