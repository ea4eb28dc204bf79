"""The task list, the task page and the one-click actions (complete, delete, inline edits).

The list's query string is the REST API's: ``/tasks/?view=today&priority=high,urgent`` lists
what ``GET /api/tasks/?view=today&priority=high,urgent`` returns, through the same FilterSet.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from .. import services
from ..models import Priority, SavedView, Task
from ..quickadd import parse_quick_add
from ..selectors import SmartView, TaskFilterSet, task_get, task_page_context
from ..templatetags.tideline import due_label
from .common import redirect_after, safe_next, user_page

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
_PAGE_ONLY_PARAMS = ("tag_match", "page")


def _user_tasks(request: HttpRequest):
    return Task.objects.for_user(request.user).with_relations()


def _get_task(request: HttpRequest, task_id: int) -> Task:
    try:
        return task_get(user=request.user, task_id=task_id)
    except Task.DoesNotExist:
        raise Http404("No such task.") from None


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
    tasks_qs = filterset.qs if valid else Task.objects.none()
    page = Paginator(tasks_qs, settings.WEB_PAGE_SIZE).get_page(request.GET.get("page"))
    tasks = list(page.object_list)
    grouped = effective.get("view") == SmartView.UPCOMING and effective["ordering"] == "due_date"
    query = filters.urlencode()
    context = {
        "tasks": tasks,
        "groups": _group_by_day(tasks) if grouped else None,
        "page": page,
        "query": query,
        "next_page_url": (
            f"{request.path}?{_with_page(filters, page.next_page_number())}"
            if page.has_next()
            else ""
        ),
        "filterset": filterset,
        "filter_errors": None if valid else filterset.errors,
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
    if getattr(request, "htmx", False) and request.GET.get("page"):
        # "Load more": just the next rows and a new "load more" button.
        return render(request, "tasks/partials/task_page_rows.html", context)
    return render(request, "tasks/task_list.html", context, status=200 if valid else 400)


def _with_page(filters: QueryDict, number: int) -> str:
    params = filters.copy()
    params["page"] = str(number)
    return params.urlencode()


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
    original = {k: v for k, v in query.lists() if k != "page"}
    return original != {k: v for k, v in params.lists()}


# --- one task ---------------------------------------------------------------------------


@user_page
@require_GET
def task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = _get_task(request, task_id)
    return render(request, "tasks/task_detail.html", task_page_context(task=task))


def _row_response(request: HttpRequest, task: Task, *, extra: str = "") -> HttpResponse:
    """The task's row, and the sidebar (its counts changed) swapped out of band."""
    task = task_get(user=request.user, task_id=task.pk)
    html = render_to_string(
        "tasks/partials/task_row.html", {"task": task, "list_url": safe_next(request, "")}, request
    )
    sidebar = render_to_string("tasks/partials/sidebar.html", {"oob": True}, request)
    return HttpResponse(html + extra + sidebar)


@user_page
@require_POST
def task_complete(request: HttpRequest, task_id: int) -> HttpResponse:
    task = services.task_complete(task=_get_task(request, task_id))
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
    task = services.task_reopen(task=_get_task(request, task_id))
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
    task = _get_task(request, task_id)
    spawned = _user_tasks(request).filter(parent=task).first()
    if spawned is not None:
        return render(
            request,
            "tasks/partials/task_row.html",
            {"task": spawned, "is_new": True, "list_url": safe_next(request, "")},
        )
    raw_attempt = request.GET.get("attempt", "")
    attempt = int(raw_attempt) if raw_attempt.isdigit() else 0
    if attempt >= NEXT_INSTANCE_ATTEMPTS or not task.completed:
        return HttpResponse("")
    return render(
        request, "tasks/partials/next_instance.html", {"task": task, "attempt": attempt + 1}
    )


@user_page
def task_delete(request: HttpRequest, task_id: int) -> HttpResponse:
    """GET: a confirmation page (JavaScript off). POST: delete."""
    task = _get_task(request, task_id)
    if request.method != "POST":
        return render(
            request,
            "tasks/task_confirm_delete.html",
            {"task": task, "next": safe_next(request, reverse("home"))},
        )
    title = task.title
    services.task_delete(task=task)
    if request.htmx or request.headers.get("X-Requested-With") == "fetch":
        sidebar = render_to_string("tasks/partials/sidebar.html", {"oob": True}, request)
        return HttpResponse(sidebar)
    messages.success(request, f"Deleted “{title}”.")
    target = safe_next(request, reverse("home"))
    if target.startswith(reverse("task-detail", args=[task_id])):
        target = reverse("home")
    return redirect(target)


@user_page
@require_POST
def task_quick_edit(request: HttpRequest, task_id: int) -> HttpResponse:
    """Change the priority or the due day from the list (the time of day is kept)."""
    task = _get_task(request, task_id)
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
    """``2026-12-04`` at the task's current local time (09:00 for a task without one)."""
    if not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        return ValidationError({"due_date": "Enter a date as YYYY-MM-DD."})
    if task.due_date is not None:
        local_time = task.due_date.astimezone(_zone(task.timezone)).time()
    else:
        local_time = settings.DEFAULT_DUE_TIME
    return dt.datetime.combine(day, local_time)  # naive: read in the task's zone


def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


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
