"""The import page: upload an iCalendar (.ics) file, see what was created and skipped."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_http_methods

from .. import services
from .common import user_page


class ImportForm(forms.Form):
    file = forms.FileField(
        label="iCalendar file (.ics)",
        help_text="To-dos and events exported from another app, up to 1 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".ics,text/calendar"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > services.MAX_ICAL_BYTES:  # refused before reading it
            raise ValidationError(f"The file is larger than {services.MAX_ICAL_BYTES:,} bytes.")
        return upload


@user_page
@require_http_methods(["GET", "POST"])
def task_import(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "tasks/import.html", {"form": ImportForm()})
    form = ImportForm(request.POST, request.FILES)
    report = None
    if form.is_valid():
        try:
            report = services.tasks_import_ical(
                user=request.user, data=form.cleaned_data["file"].read()
            )
        except ValidationError as exc:
            form.add_error("file", exc.message_dict.get("file", exc.messages))
    context = {"form": ImportForm() if report else form, "report": report}
    return render(request, "tasks/import.html", context, status=200 if report else 400)


urlpatterns = [
    path("tasks/import/", task_import, name="task-import"),
]
