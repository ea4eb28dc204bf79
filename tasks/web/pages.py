"""The task list, the task page and the one-click actions (complete, delete, inline edits).

The list's query string is the REST API's: ``/tasks/?view=today&priority=high,urgent`` lists
what ``GET /api/tasks/?view=today&priority=high,urgent`` returns, through the same FilterSet.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import Resolver404, path, resolve, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from .. import services
from ..models import Priority, SavedView, Task
from ..quickadd import parse_quick_add
from ..selectors import (
    SmartView,
    TaskFilterSet,
    task_cursor,
    task_get,
    task_page_context,
    task_spawned_instance,
    tasks_after,
    with_cursor_key,
)
from ..templatetags.tideline import due_label
from .common import confirm_delete, get_task_or_404, redirect_after, safe_next, user_page

#: The list's default order when the URL names none.
DEFAULT_ORDERING = {SmartView.COMPLETED: "-updated_at"}
FALLBACK_ORDERING = "due_date"
SORT_CHOICES = [
    ("due_date", "Due date, soonest first"),
    ("-due_date", "Due date, latest first"),
    ("-priority", "Priority, most urgent first"),
    ("priority", "Priority, least urgent first"),
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("title", "Title, A to Z"),
    ("-title", "Title, Z to A"),
]
#: Filters the form's controls send in a shape the API does not use (repeated priority
#: checkboxes, a tag-match switch) are rewritten to the API's parameters by a redirect.
_PAGE_ONLY_PARAMS = ("tag_match", "after")
#: The parameters "Filter and sort" has a control for (their errors show beside it).
FILTER_PANEL_PARAMS = frozenset(
    {"search", "status", "category", "priority", "tags", "tags_all", "due_after", "due_before"}
    | {"has_recurrence", "overdue", "ordering"}
)


def _user_tasks(request: HttpRequest) -> QuerySet[Task]:
    return Task.objects.for_user(request.user).with_relations()


def canonical_filters(query: QueryDict) -> QueryDict:
    """The form's submission as the API's query parameters (empty values dropped)."""
    params = QueryDict(mutable=True)
    for key in query:
        if key in _PAGE_ONLY_PARAMS:
            continue
        values = [value.strip() for value in query.getlist(key) if value.strip()]
        if not values:
            continue
        params[key] = ",".join(values) if key == "priority" else values[-1]
    if query.get("tag_match") == "all" and params.get("tags"):
        params["tags_all"] = params.pop("tags")[-1]
    return params


def _current_key(params: QueryDict, saved_view: SavedView | None) -> str:
    """Which sidebar entry the list is (highlighted with aria-current)."""
    if saved_view is not None:
        return f"saved:{saved_view.pk}"
    keys = set(params) - {"ordering"}
    if keys == {"view"}:
        return f"view:{params['view']}"
    if keys == {"category"}:
        return f"category:{params['category']}"
    if keys == {"tags"}:
        return f"tag:{params['tags']}"
    return ""


def _heading(params: QueryDict, filterset: TaskFilterSet, saved_view: SavedView | None) -> str:
    if saved_view is not None:
        return saved_view.name
    data = filterset.form.cleaned_data if filterset.is_bound and filterset.is_valid() else {}
    if data.get("search"):
        return f"Search: {data['search']}"
    if data.get("category"):
        return data["category"].name
    if params.get("tags") and set(params) <= {"tags", "ordering"}:
        return "@" + params["tags"]
    view = params.get("view")
    if view in SmartView.values:
        return SmartView(view).label
    return "Tasks"


def _group_by_day(tasks: list[Task]) -> list[tuple[str, list[Task]]]:
    """Upcoming, by local day: "Today · Tue 1 Dec", "Tomorrow · Wed 2 Dec", "Friday 4 Dec"."""
    today = timezone.localdate()

    def day(task: Task) -> dt.date | None:
        return timezone.localtime(task.due_date).date() if task.due_date else None

    groups = []
    for date, rows in itertools.groupby(tasks, key=day):
        if date is None:
            label = "No due date"
        else:
            delta = (date - today).days
            name = {0: "Today", 1: "Tomorrow"}.get(delta)
            short = f"{date:%a} {date.day} {date:%b}"
            label = f"{name} · {short}" if name else f"{date:%A} {date.day} {date:%B}"
        groups.append((label, list(rows)))
    return groups


def task_list_page(
    request: HttpRequest,
    *,
    params: QueryDict,
    saved_view: SavedView | None = None,
    default_view: str | None = None,
) -> HttpResponse:
    """Render the list for ``params`` (the API's filters), in pages of WEB_PAGE_SIZE."""
    filters = params.copy()
    if default_view and not filters:
        filters["view"] = default_view
    effective = filters.copy()
    if not effective.get("ordering") and not effective.get("sort_by"):
        effective["ordering"] = DEFAULT_ORDERING.get(effective.get("view"), FALLBACK_ORDERING)
    filterset = TaskFilterSet(data=effective, queryset=_user_tasks(request), request=request)
    valid = filterset.is_valid()
    after = request.GET.get("after", "")
    tasks, count, more_after = [], 0, ""
    filter_errors = {} if valid else filterset.errors
    if valid:
        sort_by, descending = filterset.sort_key()
        count = filterset.qs.count()
        rows = with_cursor_key(filterset.qs, sort_by=sort_by)
        try:
            if after:
                rows = tasks_after(rows, sort_by=sort_by, descending=descending, cursor=after)
            tasks = list(rows[: settings.WEB_PAGE_SIZE + 1])
        except ValidationError as exc:
            valid, filter_errors = False, exc.message_dict
        if len(tasks) > settings.WEB_PAGE_SIZE:
            tasks = tasks[: settings.WEB_PAGE_SIZE]
            more_after = task_cursor(tasks[-1])
    grouped = effective.get("view") == SmartView.UPCOMING and effective["ordering"] == "due_date"
    query = filters.urlencode()
    next_params = filters.copy()
    next_params["after"] = more_after
    context = {
        "tasks": tasks,
        "groups": _group_by_day(tasks) if grouped else None,
        "count": count,
        "query": query,
        "continued": bool(after),
        "next_page_url": f"{request.path}?{next_params.urlencode()}" if more_after else "",
        "filterset": filterset,
        "filter_errors": filter_errors,
        "tag_filter_errors": filter_errors.get("tags") or filter_errors.get("tags_all"),
        "other_filter_errors": [
            (name, errors)
            for name, errors in filter_errors.items()
            if name not in FILTER_PANEL_PARAMS
        ],
        "filters": filters,
        "heading": _heading(filters, filterset, saved_view),
        "current": _current_key(filters, saved_view),
        "saved_view": saved_view,
        "sort_choices": SORT_CHOICES,
        "ordering": effective.get("ordering", ""),
        "priorities": Priority.choices,
        "selected_priorities": filters.get("priority", "").split(","),
        "list_url": request.get_full_path(),
        "filters_open": bool(set(filters) - {"view", "ordering"}),
    }
    if request.htmx and after and not grouped:
        # "Load more": just the next rows and a new "load more" button.
        response = render(request, "tasks/partials/task_page_rows.html", context)
    else:
        response = render(request, "tasks/task_list.html", context, status=200 if valid else 400)
    patch_vary_headers(response, ["HX-Request"])
    return response


def home(request: HttpRequest) -> HttpResponse:
    """Signed in: every pending task. Otherwise: what Tideline is, and how to get in."""
    if not request.user.is_authenticated:
        return render(request, "home.html", {"demo_login": settings.DEBUG})
    return task_list(request, default_view=SmartView.ALL)


@user_page
@require_GET
def task_list(request: HttpRequest, default_view: str | None = None) -> HttpResponse:
    params = canonical_filters(request.GET)
    if default_view is None and _needs_rewrite(request.GET, params):
        url = f"{request.path}?{params.urlencode()}" if params else request.path
        return redirect(url)
    return task_list_page(request, params=params, default_view=default_view)


def _needs_rewrite(query: QueryDict, params: QueryDict) -> bool:
    original = {k: v for k, v in query.lists() if k != "after"}
    return original != {k: v for k, v in params.lists()}


# --- one task ---------------------------------------------------------------------------


@user_page
@require_GET
def task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = get_task_or_404(request, task_id)
    return render(request, "tasks/task_detail.html", task_page_context(task=task))


def _sidebar_oob(request: HttpRequest) -> str:
    """The sidebar with fresh counts, swapped out of band, still marking the list it is on
    (``next``: the list the action was made from)."""
    target = urlsplit(safe_next(request, ""))
    current = ""
    try:
        match = resolve(target.path)
    except Resolver404:
        match = None
    if match is not None and match.url_name == "saved-view":
        current = f"saved:{match.kwargs['view_id']}"
    elif match is not None and match.url_name == "home":
        current = f"view:{SmartView.ALL}"
    elif match is not None and match.url_name == "task-list":
        current = _current_key(canonical_filters(QueryDict(target.query)), None)
    return render_to_string(
        "tasks/partials/sidebar.html", {"oob": True, "current": current}, request
    )


def _row_response(request: HttpRequest, task: Task, *, extra: str = "") -> HttpResponse:
    """The task's row, and the sidebar (its counts changed) swapped out of band."""
    task = task_get(user=request.user, task_id=task.pk)
    html = render_to_string(
        "tasks/partials/task_row.html", {"task": task, "list_url": safe_next(request, "")}, request
    )
    return HttpResponse(html + extra + _sidebar_oob(request))


@user_page
@require_POST
def task_complete(request: HttpRequest, task_id: int) -> HttpResponse:
    task = services.task_complete(task=get_task_or_404(request, task_id))
    if request.htmx:
        extra = ""
        if task.has_recurrence:
            extra = render_to_string(
                "tasks/partials/next_instance.html", {"task": task, "attempt": 0}, request
            )
        return _row_response(request, task, extra=extra)
    message = f"Completed “{task.title}”."
    if task.next_occurrence_at:
        message += f" Next one: {due_label(task.next_occurrence_at)}."
    messages.success(request, message)
    return redirect(safe_next(request, reverse("task-detail", args=[task.pk])))


@user_page
@require_POST
def task_reopen(request: HttpRequest, task_id: int) -> HttpResponse:
    task = services.task_reopen(task=get_task_or_404(request, task_id))
    if request.htmx:
        return _row_response(request, task)
    messages.success(request, f"Reopened “{task.title}”.")
    return redirect(safe_next(request, reverse("task-detail", args=[task.pk])))


#: How often the page asks for a spawned instance before giving up (about 5 s in all).
NEXT_INSTANCE_ATTEMPTS = 10


@user_page
@require_GET
def task_next_instance(request: HttpRequest, task_id: int) -> HttpResponse:
    """The instance spawned from a completed recurring task, once the consumer made it."""
    task = get_task_or_404(request, task_id)
    spawned = task_spawned_instance(task=task)
    if spawned is not None:
        return render(
            request,
            "tasks/partials/task_row.html",
            {"task": spawned, "is_new": True, "list_url": safe_next(request, "")},
        )
    raw_attempt = request.GET.get("attempt", "")
    # ASCII digits, and few of them: int() takes "³" and refuses 5,000 digits.
    attempt = int(raw_attempt) if re.fullmatch(r"[0-9]{1,3}", raw_attempt) else 0
    if attempt >= NEXT_INSTANCE_ATTEMPTS or not task.completed:
        return HttpResponse("")
    return render(
        request, "tasks/partials/next_instance.html", {"task": task, "attempt": attempt + 1}
    )


@user_page
def task_delete(request: HttpRequest, task_id: int) -> HttpResponse:
    """GET: a confirmation page (JavaScript off). POST: delete."""
    task = get_task_or_404(request, task_id)
    if request.method != "POST":
        back = safe_next(request, reverse("home"))
        series = "; its series stops here unless another instance is open"
        return confirm_delete(
            request,
            title=f"Delete “{task.title}”?",
            consequence=f"The task is removed for good{series if task.has_recurrence else ''}.",
            cancel_url=back,
            confirm="Delete task",
            next_url=back,
        )
    title = task.title
    services.task_delete(task=task)
    if request.htmx or request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(_sidebar_oob(request))
    messages.success(request, f"Deleted “{title}”.")
    target = safe_next(request, reverse("home"))
    if target.startswith(reverse("task-detail", args=[task_id])):
        target = reverse("home")
    return redirect(target)


@user_page
@require_POST
def task_quick_edit(request: HttpRequest, task_id: int) -> HttpResponse:
    """Change the priority or the due day from the list (the time of day is kept)."""
    task = get_task_or_404(request, task_id)
    data: dict = {}
    if "priority" in request.POST:
        data["priority"] = request.POST["priority"]
    if "due_day" in request.POST:
        data["due_date"] = _due_on_day(task, request.POST["due_day"])
    try:
        if "due_date" in data and isinstance(data["due_date"], ValidationError):
            raise data["due_date"]
        task, _ = services.task_update(task=task, data=data)
    except ValidationError as exc:
        text = "; ".join(exc.messages)
        if request.htmx:
            response = render(
                request,
                "tasks/partials/message.html",
                {"level": "error", "text": f"Not saved: {text}"},
            )
            return reswap(retarget(response, "#messages"), "innerHTML")
        messages.error(request, f"Not saved: {text}")
        return redirect(safe_next(request, reverse("task-detail", args=[task.pk])))
    if request.htmx:
        return _row_response(request, task)
    messages.success(request, f"Saved “{task.title}”.")
    return redirect(safe_next(request, reverse("task-detail", args=[task.pk])))


def _due_on_day(task: Task, value: str) -> dt.datetime | ValidationError | None:
    """``2026-12-04`` at the task's current local time (DEFAULT_DUE_TIME for a task without one)."""
    if not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        return ValidationError({"due_date": "Enter a date as YYYY-MM-DD."})
    if task.due_date is not None:
        local_time = task.due_date.astimezone(zoneinfo.ZoneInfo(task.timezone)).time()
    else:
        local_time = settings.DEFAULT_DUE_TIME
    return dt.datetime.combine(day, local_time)  # naive: read in the task's zone


# --- quick add --------------------------------------------------------------------------


@user_page
@require_POST
def quick_add(request: HttpRequest) -> HttpResponse:
    text = request.POST.get("text", "")
    try:
        task = services.task_quick_add(user=request.user, text=text)
    except ValidationError as exc:
        errors = exc.messages
        if request.htmx:
            response = render(
                request, "tasks/partials/quick_add_preview.html", {"errors": errors, "text": text}
            )
            return reswap(retarget(response, "#quick-add-preview"), "innerHTML")
        messages.error(request, f"Not added: {' '.join(errors)} You typed: {text}")
        return redirect(safe_next(request, reverse("home")))
    due = f", due {due_label(task.due_date)}" if task.due_date else ""
    messages.success(request, f"Added “{task.title}”{due}.")
    return redirect_after(request, safe_next(request, reverse("home")))


@user_page
@require_GET
def quick_add_preview(request: HttpRequest) -> HttpResponse:
    """What quick add would create from ``text``: the chips shown under the field."""
    text = request.GET.get("text", "")
    context: dict = {"text": text}
    if text.strip():
        try:
            parsed = parse_quick_add(text, user=request.user)
            parsed.validate()
            context["parsed"] = parsed
        except ValidationError as exc:
            context["errors"] = exc.messages
    return render(request, "tasks/partials/quick_add_preview.html", context)


urlpatterns = [
    path("", home, name="home"),
    path("tasks/", task_list, name="task-list"),
    path("tasks/quick-add/", quick_add, name="quick-add"),
    path("tasks/quick-add/preview/", quick_add_preview, name="quick-add-preview"),
    path("tasks/<int:task_id>/", task_detail, name="task-detail"),
    path("tasks/<int:task_id>/complete/", task_complete, name="task-complete"),
    path("tasks/<int:task_id>/reopen/", task_reopen, name="task-reopen"),
    path("tasks/<int:task_id>/delete/", task_delete, name="task-delete"),
    path("tasks/<int:task_id>/quick-edit/", task_quick_edit, name="task-quick-edit"),
    path("tasks/<int:task_id>/next/", task_next_instance, name="task-next-instance"),
]
