"""Server-rendered pages (the task page that reminder e-mails link to)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from recurrence.describe import describe
from recurrence.series import effective_rule

from .models import Task
from .selectors import task_get


@login_required
def task_detail(request, task_id: int):
    try:
        task = task_get(user=request.user, task_id=task_id)
    except Task.DoesNotExist:
        raise Http404("No such task.") from None
    rule = effective_rule(task)
    return render(
        request,
        "tasks/task_detail.html",
        {"task": task, "recurrence": describe(rule) if rule else ""},
    )
