"""Forms of the categories, tags and saved-views pages.

They read input and check only its shape; the services validate (unique names, colours) and
their errors are copied onto the form, beside the field, in the API's wording.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from ..models import Category, SavedView, Tag
from .common import add_service_errors


class ColorInput(forms.TextInput):
    input_type = "color"


class CategoryForm(forms.Form):
    name = forms.CharField(label="Name", max_length=Category._meta.get_field("name").max_length)
    color = forms.CharField(
        label="Colour", widget=ColorInput, initial=Category._meta.get_field("color").default
    )


class TagForm(forms.Form):
    name = forms.CharField(label="Name", max_length=Tag._meta.get_field("name").max_length)


class SavedViewForm(forms.Form):
    name = forms.CharField(label="Name", max_length=SavedView._meta.get_field("name").max_length)


def save_with(form: forms.Form, service: Callable[[dict[str, Any]], Any]) -> Any | None:
    """Call ``service`` with the form's cleaned data; its result, or None with the errors on
    the form (a service ValidationError lands on the field it names)."""
    if not form.is_valid():
        return None
    try:
        return service(form.cleaned_data)
    except ValidationError as exc:
        add_service_errors(form, exc)
        return None
