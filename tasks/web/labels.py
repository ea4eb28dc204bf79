"""The categories, tags and saved-views pages: list, create, rename, delete.

Every action is a plain form POST answered by a redirect and a flash message; a refused
change re-renders the page (status 400) with the error beside its field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST

from .. import services
from ..selectors import (
    SmartView,
    StrictBooleanField,
    category_get,
    category_list_with_counts,
    category_names,
    saved_view_get,
    tag_get,
    tag_list_with_counts,
)
from ..selectors import saved_view_list as saved_views_of
from .common import confirm_delete, redirect_after, selected_or_404, user_page
from .label_forms import CategoryForm, SavedViewForm, TagForm, save_with
from .pages import task_list_page

#: List-page query parameters that are not filters: ``saved`` marks the saved view shown.
NOT_FILTERS = frozenset({"saved", "page", "after"})


def _tasks_kept(count: int, without: str) -> str:
    """What happens to the tasks of a deleted category or tag, in words."""
    if count == 0:
        return "No tasks use it."
    if count == 1:
        return f"Its 1 task keeps existing, {without}."
    return f"Its {count} tasks keep existing, {without}."


#: The row whose inline edit was refused: its id and the bound form with the errors.
Edit = tuple[int, forms.Form] | None


def _rows(
    objects: Iterable[models.Model],
    form_class: type[forms.Form],
    prefix: str,
    edit: Edit,
    initial: Callable[[Any], dict[str, Any]],
) -> list[tuple[Any, forms.Form]]:
    """Each object with its inline edit form: the refused one bound, the others fresh."""
    edit_id, edit_form = edit or (None, None)
    return [
        (
            obj,
            edit_form
            if obj.pk == edit_id
            else form_class(initial=initial(obj), auto_id=f"{prefix}-{obj.pk}-%s"),
        )
        for obj in objects
    ]


# --- categories ---------------------------------------------------------------------------


def _category_form(
    data: QueryDict | None = None, *, category_id: int | None = None
) -> CategoryForm:
    auto_id = f"category-{category_id}-%s" if category_id else "new-category-%s"
    return CategoryForm(data, auto_id=auto_id)


def _category_page(
    request: HttpRequest,
    *,
    create_form: CategoryForm | None = None,
    edit: Edit = None,
    status: int = 200,
) -> HttpResponse:
    categories = category_list_with_counts(user=request.user)
    rows = _rows(
        categories, CategoryForm, "category", edit, lambda c: {"name": c.name, "color": c.color}
    )
    context = {"create_form": create_form or _category_form(), "rows": rows}
    return render(request, "tasks/categories.html", context, status=status)


@user_page
@require_http_methods(["GET", "POST"])
def category_list(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _category_page(request)
    form = _category_form(request.POST)
    category = save_with(form, lambda data: services.category_create(user=request.user, **data))
    if category is None:
        return _category_page(request, create_form=form, status=400)
    messages.success(request, f"Added category “{category.name}”.")
    return redirect_after(request, reverse("category-list"))


@user_page
@require_POST
def category_edit(request: HttpRequest, category_id: int) -> HttpResponse:
    category = selected_or_404(category_get, user=request.user, category_id=category_id)
    form = _category_form(request.POST, category_id=category.pk)
    if save_with(form, lambda data: services.category_update(category=category, data=data)):
        messages.success(request, f"Saved category “{category.name}”.")
        return redirect_after(request, reverse("category-list"))
    return _category_page(request, edit=(category.pk, form), status=400)


@user_page
@require_http_methods(["GET", "POST"])
def category_delete(request: HttpRequest, category_id: int) -> HttpResponse:
    category = selected_or_404(category_get, user=request.user, category_id=category_id)
    kept = _tasks_kept(category.task_count, "without a category")
    if request.method == "POST":
        services.category_delete(category=category)
        messages.success(request, f"Deleted category “{category.name}”. {kept}")
        return redirect_after(request, reverse("category-list"))
    return confirm_delete(
        request,
        title=f"Delete category “{category.name}”?",
        consequence=kept,
        cancel_url=reverse("category-list"),
        confirm="Delete category",
    )


# --- tags ---------------------------------------------------------------------------------


def _tag_form(data: QueryDict | None = None, *, tag_id: int | None = None) -> TagForm:
    return TagForm(data, auto_id=f"tag-{tag_id}-%s" if tag_id else "new-tag-%s")


def _tag_page(
    request: HttpRequest,
    *,
    create_form: TagForm | None = None,
    edit: Edit = None,
    status: int = 200,
) -> HttpResponse:
    tags = tag_list_with_counts(user=request.user)
    rows = _rows(tags, TagForm, "tag", edit, lambda t: {"name": t.name})
    context = {"create_form": create_form or _tag_form(), "rows": rows}
    return render(request, "tasks/tags.html", context, status=status)


@user_page
@require_http_methods(["GET", "POST"])
def tag_list(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _tag_page(request)
    form = _tag_form(request.POST)
    tag = save_with(form, lambda data: services.tag_create(user=request.user, **data))
    if tag is None:
        return _tag_page(request, create_form=form, status=400)
    messages.success(request, f"Added tag “{tag.name}”.")
    return redirect_after(request, reverse("tag-list"))


@user_page
@require_POST
def tag_edit(request: HttpRequest, tag_id: int) -> HttpResponse:
    tag = selected_or_404(tag_get, user=request.user, tag_id=tag_id)
    form = _tag_form(request.POST, tag_id=tag.pk)
    if save_with(form, lambda data: services.tag_update(tag=tag, data=data)):
        messages.success(request, f"Renamed the tag to “{tag.name}”.")
        return redirect_after(request, reverse("tag-list"))
    return _tag_page(request, edit=(tag.pk, form), status=400)


@user_page
@require_http_methods(["GET", "POST"])
def tag_delete(request: HttpRequest, tag_id: int) -> HttpResponse:
    tag = selected_or_404(tag_get, user=request.user, tag_id=tag_id)
    kept = _tasks_kept(tag.task_count, "without this tag")
    if request.method == "POST":
        services.tag_delete(tag=tag)
        messages.success(request, f"Deleted tag “{tag.name}”. {kept}")
        return redirect_after(request, reverse("tag-list"))
    return confirm_delete(
        request,
        title=f"Delete tag “{tag.name}”?",
        consequence=kept,
        cancel_url=reverse("tag-list"),
        confirm="Delete tag",
    )


# --- saved views --------------------------------------------------------------------------


def _yes_no(yes: str, no: str) -> Callable[[str], str]:
    return lambda value: yes if value.strip().lower() in StrictBooleanField.TRUE else no


def _sort_words(field: str, descending: bool) -> str:
    return f"sorted by {field.replace('_', ' ')}" + (", descending" if descending else "")


def _comma_list(value: str) -> str:
    return ", ".join(part.strip() for part in value.split(",") if part.strip())


#: How each filter reads, in the order they are shown (``view`` and sorting are apart).
_FILTER_WORDS: dict[str, Callable[[str], str]] = {
    "status": lambda value: value,
    "completed": _yes_no("completed", "not completed"),
    "priority": lambda value: f"priority {_comma_list(value)}",
    "tags": lambda value: f"tags {_comma_list(value)}",
    "tags_all": lambda value: f"all tags {_comma_list(value)}",
    "due_after": lambda value: f"due from {value}",
    "due_before": lambda value: f"due until {value}",
    "created_after": lambda value: f"created from {value}",
    "created_before": lambda value: f"created until {value}",
    "overdue": _yes_no("overdue", "not overdue"),
    "has_due_date": _yes_no("with a due date", "without a due date"),
    "has_recurrence": _yes_no("repeating", "not repeating"),
    "search": lambda value: f"matching “{value}”",
}


def filters_in_words(filters: Mapping[str, str], category_names: Mapping[int, str]) -> str:
    """A saved view's filters as a reader says them: ``Today · priority high, urgent · tags
    work``. ``category_names`` maps category ids to names (a missing one was deleted)."""
    words = []
    if view := filters.get("view"):
        words.append(SmartView(view).label if view in SmartView.values else view)
    if category := filters.get("category"):
        name = category_names.get(int(category)) if str(category).isdigit() else None
        words.append(f"category {name}" if name else "a deleted category")
    words += [say(filters[key]) for key, say in _FILTER_WORDS.items() if filters.get(key)]
    if ordering := filters.get("ordering"):
        words.append(_sort_words(ordering.lstrip("-"), ordering.startswith("-")))
    elif filters.get("sort_by") or filters.get("sort_order"):
        field = filters.get("sort_by") or "created_at"
        words.append(_sort_words(field, filters.get("sort_order", "desc") != "asc"))
    return " · ".join(words) or "All tasks"


def _saved_view_page(request: HttpRequest, *, edit: Edit = None, status: int = 200) -> HttpResponse:
    views = list(saved_views_of(user=request.user))
    category_ids = {
        int(view.filters["category"])
        for view in views
        if str(view.filters.get("category", "")).isdigit()
    }
    names = category_names(user=request.user, category_ids=category_ids)
    rows = [
        (view, form, filters_in_words(view.filters, names))
        for view, form in _rows(views, SavedViewForm, "view", edit, lambda v: {"name": v.name})
    ]
    return render(request, "tasks/saved_views.html", {"rows": rows}, status=status)


@user_page
def saved_view(request: HttpRequest, view_id: int) -> HttpResponse:
    """The task list with the view's filters, at the view's own address (so the sidebar
    marks it and a reload keeps it)."""
    view = selected_or_404(saved_view_get, user=request.user, view_id=view_id)
    params = QueryDict(urlencode(sorted(view.filters.items())), mutable=True)
    return task_list_page(request, params=params, saved_view=view)


@user_page
@require_POST
def saved_view_create(request: HttpRequest) -> HttpResponse:
    """Save the list's current filters (the hidden ``query`` field) under ``name``."""
    query = QueryDict(request.POST.get("query", ""))
    filters = {
        key: ",".join(value for value in values if value)
        for key, values in query.lists()
        if key not in NOT_FILTERS
    }
    try:
        view = services.saved_view_create(
            user=request.user, name=request.POST.get("name", ""), filters=filters
        )
    except ValidationError as exc:
        problems = " ".join(
            f"{field.capitalize()}: {message}"
            for field, field_messages in exc.message_dict.items()
            for message in field_messages
        )
        messages.error(request, f"The view was not saved. {problems}")
        back = reverse("task-list") + (f"?{query.urlencode()}" if query else "")
        return redirect_after(request, back)
    messages.success(request, f"Saved view “{view.name}”.")
    return redirect_after(request, reverse("saved-view", args=[view.pk]))


@user_page
def saved_view_list(request: HttpRequest) -> HttpResponse:
    return _saved_view_page(request)


@user_page
@require_POST
def saved_view_edit(request: HttpRequest, view_id: int) -> HttpResponse:
    view = selected_or_404(saved_view_get, user=request.user, view_id=view_id)
    form = SavedViewForm(request.POST, auto_id=f"view-{view.pk}-%s")
    if save_with(form, lambda data: services.saved_view_update(view=view, data=data)):
        messages.success(request, f"Renamed the view to “{view.name}”.")
        return redirect_after(request, reverse("saved-view-list"))
    return _saved_view_page(request, edit=(view.pk, form), status=400)


@user_page
@require_http_methods(["GET", "POST"])
def saved_view_delete(request: HttpRequest, view_id: int) -> HttpResponse:
    view = selected_or_404(saved_view_get, user=request.user, view_id=view_id)
    if request.method == "POST":
        services.saved_view_delete(view=view)
        messages.success(request, f"Deleted saved view “{view.name}”. Its tasks stay.")
        return redirect_after(request, reverse("saved-view-list"))
    return confirm_delete(
        request,
        title=f"Delete saved view “{view.name}”?",
        consequence="Its tasks stay: only this saved filter is deleted.",
        cancel_url=reverse("saved-view-list"),
        confirm="Delete view",
    )


urlpatterns = [
    path("categories/", category_list, name="category-list"),
    path("categories/<int:category_id>/edit/", category_edit, name="category-edit"),
    path("categories/<int:category_id>/delete/", category_delete, name="category-delete"),
    path("tags/", tag_list, name="tag-list"),
    path("tags/<int:tag_id>/edit/", tag_edit, name="tag-edit"),
    path("tags/<int:tag_id>/delete/", tag_delete, name="tag-delete"),
    path("views/", saved_view_list, name="saved-view-list"),
    path("views/save/", saved_view_create, name="saved-view-create"),
    path("views/<int:view_id>/", saved_view, name="saved-view"),
    path("views/<int:view_id>/edit/", saved_view_edit, name="saved-view-edit"),
    path("views/<int:view_id>/delete/", saved_view_delete, name="saved-view-delete"),
]
