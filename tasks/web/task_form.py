"""Creating and editing a task: a page, and the same form alone for an htmx dialog."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from .. import services
from ..models import Task, timezone_names
from .common import add_service_errors, get_task_or_404, redirect_after, safe_next, user_page
from .forms import DUE_FIELDS, RECURRENCE_FIELDS, TaskForm

PAGE_TEMPLATE = "tasks/task_form.html"
BODY_TEMPLATE = "tasks/partials/task_form_body.html"
PREVIEW_TEMPLATE = "tasks/partials/recurrence_preview.html"


@user_page
@require_http_methods(["GET", "POST"])
def task_new(request: HttpRequest) -> HttpResponse:
    return _task_form(request, task=None)


@user_page
@require_http_methods(["GET", "POST"])
def task_edit(request: HttpRequest, task_id: int) -> HttpResponse:
    return _task_form(request, task=get_task_or_404(request, task_id))


@user_page
@require_http_methods(["GET", "POST"])
def task_form_preview(request: HttpRequest) -> HttpResponse:
    """The recurrence preview for the form's current values (htmx swaps it in live)."""
    form = TaskForm(request.POST if request.method == "POST" else request.GET, user=request.user)
    form.is_valid()
    return render(request, PREVIEW_TEMPLATE, {"preview": form.preview()})


def _task_form(request: HttpRequest, *, task: Task | None) -> HttpResponse:
    if request.method != "POST":
        form = TaskForm(user=request.user, task=task)
        return _render(request, form, task=task, in_dialog=bool(request.htmx))

    in_dialog = request.POST.get("dialog") == "1"
    form = TaskForm(request.POST, user=request.user, task=task)
    if "preview" in request.POST:  # the no-JavaScript preview: show it, save nothing
        form.is_valid()
        form.keep_only_errors_of((*DUE_FIELDS, *RECURRENCE_FIELDS))
        return _render(request, form, task=task, in_dialog=in_dialog)
    if form.is_valid():
        try:
            saved = _save(form, task=task, user=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc, form.service_field_map())
        else:
            messages.success(request, "Task saved" if task else "Task created")
            default = reverse("task-detail", args=[saved.pk])
            return redirect_after(request, safe_next(request, default))
    # htmx 2 does not swap a 4xx response: the dialog gets its errors with a 200.
    status = 200 if request.htmx else 400
    return _render(request, form, task=task, in_dialog=in_dialog, status=status)


def _save(form: TaskForm, *, task: Task | None, user) -> Task:
    if task is None:
        return services.task_create(user=user, **form.create_kwargs())
    task, _ = services.task_update(task=task, data=form.update_data())
    return task


def _next_url(request: HttpRequest) -> str:
    """Where to go after saving: a safe ``next``, or the page an htmx dialog was opened on."""
    given = safe_next(request, "")
    if given:
        return given
    if request.htmx and request.method != "POST":
        return request.htmx.current_url_abs_path or ""
    return ""


def _render(
    request: HttpRequest,
    form: TaskForm,
    *,
    task: Task | None,
    in_dialog: bool,
    status: int = 200,
) -> HttpResponse:
    if task is None:
        action, cancel_default = reverse("task-new"), reverse("home")
    else:
        action = reverse("task-edit", args=[task.pk])
        cancel_default = reverse("task-detail", args=[task.pk])
    context = {
        "form": form,
        "task": task,
        "in_dialog": in_dialog,
        "action": action,
        "next": _next_url(request),
        "cancel_url": safe_next(request, cancel_default),
        "preview": form.preview(),
        "zone_names": timezone_names(),
        "tag_names": form.tag_suggestions(),
    }
    template = BODY_TEMPLATE if request.htmx else PAGE_TEMPLATE
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))  # the same address: a fragment or a page
    return response


urlpatterns = [
    path("tasks/new/", task_new, name="task-new"),
    path("tasks/<int:task_id>/edit/", task_edit, name="task-edit"),
    path("tasks/form/recurrence-preview/", task_form_preview, name="task-form-preview"),
]
