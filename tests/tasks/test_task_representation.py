"""GET /api/tasks/ and /api/tasks/{id}/ read plain rows (``tasks.api.reading``) and render
them with orjson (``tasks.api.renderers``): the bytes are those ``TaskSerializer`` and DRF's
``JSONRenderer`` give for the same tasks, whatever their zones, tags, rules and nulls."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer

from tasks.api.renderers import FastJSONRenderer
from tasks.api.serializers import TaskSerializer
from tasks.models import RecurrenceMode, Task
from tests.factories import make_category, make_task
from tests.recurrence.helpers import complete_and_relay

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def varied_tasks(alice, bob):
    """Tasks in zones with DST, half- and quarter-hour offsets; tags of mixed case and
    accents; rules, presets and completion repeats; reminders; nulls; completed instances
    of a series (parent, series, occurrence set)."""
    home = make_category(alice, "Home")
    make_task(bob, title="Bob's", tags=["work"])  # another user's task is never listed
    specs = [
        dict(title="Plain"),
        dict(
            title="Paris, the night clocks go forward",
            timezone="Europe/Paris",
            due_date=dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
            tags=["Zeta", "alpha", "Été", "eau"],
            category=home,
        ),
        dict(
            title="Paris in winter",
            timezone="Europe/Paris",
            due_date=dt.datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC),
            remind_before=dt.timedelta(hours=1, minutes=30),
        ),
        dict(
            title="New York, fall back",
            timezone="America/New_York",
            due_date=dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
            remind_at=dt.datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
            recurrence_rule="FREQ=WEEKLY;BYDAY=MO,FR",
            tags=["B1", "b2", "a"],
        ),
        dict(
            title="Kolkata +05:30",
            timezone="Asia/Kolkata",
            due_date=dt.datetime(2026, 6, 15, 3, 0, tzinfo=UTC),
            recurrence_type="daily",
            recurrence_interval=3,
            priority="urgent",
        ),
        dict(
            title="Kathmandu +05:45",
            timezone="Asia/Kathmandu",
            due_date=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            recurrence_type="weekly",
            recurrence_mode=RecurrenceMode.COMPLETION,
            remind_before=dt.timedelta(days=1, seconds=5, microseconds=7),
        ),
        dict(
            title="Adelaide +10:30",
            timezone="Australia/Adelaide",
            due_date=dt.datetime(2026, 4, 4, 15, 45, tzinfo=UTC),
            recurrence_rule="FREQ=MONTHLY;BYMONTHDAY=1,-1;COUNT=3",
            tags=["Ökonomie", "work"],
            priority="low",
        ),
        dict(
            title="St John's -03:30",
            timezone="America/St_Johns",
            due_date=dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
            description='Line one\nline two \u2028 and a separator \u2029, quotes " \\ \t',
            tags=["work"],
        ),
        dict(
            title="Due in UTC", timezone="UTC", due_date=dt.datetime(2026, 5, 5, 0, 0, tzinfo=UTC)
        ),
        dict(title="Emoji 🎉 and 日本語", priority="high", tags=["日本", "_under"]),
    ]
    for spec in specs:
        make_task(alice, **spec)
    # Completed: a one-off, and instances of recurring series (the next ones are spawned).
    for title in ("Kolkata +05:30", "New York, fall back", "Plain"):
        complete_and_relay(Task.objects.get(user=alice, title=title))
    assert Task.objects.filter(user=alice, parent__isnull=False, series__isnull=False).exists()


def expected_bytes(tasks) -> list[bytes]:
    return [JSONRenderer().render(TaskSerializer(task).data) for task in tasks]


def alices_tasks(alice):
    return Task.objects.for_user(alice).with_relations().order_by("-created_at", "-id")


def test_the_list_is_byte_for_byte_what_the_serializer_and_drf_renderer_give(
    api, alice, varied_tasks
):
    tasks = list(alices_tasks(alice))
    expected = {
        "count": len(tasks),
        "next": None,
        "previous": None,
        "results": [TaskSerializer(task).data for task in tasks],
    }

    response = api.get("/api/tasks/?page_size=200")

    assert response.status_code == 200
    assert len(tasks) >= 12  # the fixture's tasks and the spawned instances
    assert response.content == JSONRenderer().render(expected)


@pytest.mark.parametrize(
    "query",
    ["ordering=due_date", "ordering=-priority&status=pending", "sort_by=title", "view=all"],
)
def test_a_sorted_or_filtered_list_renders_each_task_as_the_serializer_does(
    api, alice, varied_tasks, query
):
    response = api.get(f"/api/tasks/?page_size=200&{query}")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert rows
    by_id = {task.pk: task for task in alices_tasks(alice)}
    assert [JSONRenderer().render(row) for row in rows] == expected_bytes(
        by_id[row["id"]] for row in rows
    )


def test_each_detail_is_byte_for_byte_what_the_serializer_gives(api, alice, varied_tasks):
    tasks = list(alices_tasks(alice))

    bodies = [api.get(f"/api/tasks/{task.pk}/").content for task in tasks]

    assert bodies == expected_bytes(tasks)


def test_a_detail_with_filters_answers_404_when_they_exclude_the_task(api, alice, varied_tasks):
    pending = Task.objects.filter(user=alice, completed=False).first()

    assert api.get(f"/api/tasks/{pending.pk}/?status=completed").status_code == 404
    assert api.get(f"/api/tasks/{pending.pk}/?status=pending").status_code == 200


def test_another_users_task_and_a_malformed_id_are_404(api, bob):
    bobs = make_task(bob, title="Bob's")

    assert api.get(f"/api/tasks/{bobs.pk}/").status_code == 404
    assert api.get("/api/tasks/abc/").status_code == 404
    assert api.get("/api/tasks/99999999999999999999999/").status_code == 404


PAYLOADS = [
    {"count": 2, "next": None, "previous": None, "results": [{"a": [1, True, None, "x"]}]},
    {"title": "café ☕ 🎉 日本語", "escape": '" \\ / \n \r \t \b \f \x00 \x1f \x7f'},
    {"separators": "a\u2028b\u2029c"},
    {"detail": ErrorDetail("Not found.", code="not_found")},
    {"tags": {"0": [ErrorDetail("Must be a string.", code="invalid")]}},
    {"lazy": gettext_lazy("This field is required.")},
    {"when": dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "day": dt.date(2026, 1, 2)},
    {"amount": decimal.Decimal("1.50"), "id": uuid.UUID(int=7), "big": 2**70},
    {1: "a non-string key"},
    [],
    "a string",
]


@pytest.mark.parametrize("data", PAYLOADS)
def test_the_orjson_renderer_writes_what_drfs_json_renderer_writes(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_the_orjson_renderer_indents_as_drfs_renderer_when_asked():
    data = {"a": [1, {"b": "é"}]}
    media_type = "application/json; indent=4"

    assert FastJSONRenderer().render(data, media_type) == JSONRenderer().render(data, media_type)
    assert FastJSONRenderer().render(None) == b""
