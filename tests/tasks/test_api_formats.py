"""What the API writes is what it reads: durations as ISO 8601 (``PT30S`` comes back
``PT30S``, not ``00:00:30``) and every date-time with its UTC offset."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.utils.dateparse import parse_duration

from tasks.api.durations import iso_duration
from tests.factories import make_task

pytestmark = pytest.mark.django_db

DUE = "2026-12-05T09:00:00"


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("PT30S", "PT30S"),
        ("PT15M", "PT15M"),
        ("PT1H30M", "PT1H30M"),
        ("P1D", "P1D"),
        ("P1DT12H", "P1DT12H"),
        ("P365D", "P365D"),
        ("PT0.5S", "PT0.5S"),
        ("PT0S", "PT0S"),
        # Read as before, written as ISO 8601:
        ("PT48H", "P2D"),
        ("PT90M", "PT1H30M"),
        ("00:30:00", "PT30M"),
        ("1 00:00:00", "P1D"),
        ("1 day", "P1D"),
        ("2 01:00:05", "P2DT1H5S"),
    ],
)
def test_remind_before_comes_back_as_iso_8601(api, sent, shown):
    created = api.post(
        "/api/tasks/",
        {"title": "Call", "due_date": DUE, "timezone": "Europe/Berlin", "remind_before": sent},
    )
    assert created.status_code == 201, created.json()
    task_id = created.json()["id"]

    assert created.json()["remind_before"] == shown
    assert api.get(f"/api/tasks/{task_id}/").json()["remind_before"] == shown
    assert api.get("/api/tasks/").json()["results"][0]["remind_before"] == shown
    patched = api.patch(f"/api/tasks/{task_id}/", {"title": "Call back"})
    assert patched.json()["remind_before"] == shown


def test_a_task_sent_back_as_it_was_shown_keeps_its_remind_before(api):
    body = api.post(
        "/api/tasks/", {"title": "Call", "due_date": DUE, "remind_before": "P1DT2H"}
    ).json()

    response = api.put(f"/api/tasks/{body['id']}/", {**body, "title": "Call back"})

    assert response.status_code == 200, response.json()
    assert response.json()["remind_before"] == "P1DT2H"
    assert response.json()["remind_at"] == body["remind_at"]


def test_quick_add_preview_shows_the_reminder_offset_as_iso_8601(api):
    response = api.post(
        "/api/tasks/parse/", {"text": "Call mum tomorrow 18:00 remind 2 days before"}
    )

    assert response.status_code == 200
    assert response.json()["remind_before"] == "P2D"


def test_a_task_without_a_reminder_offset_shows_null(api):
    assert api.post("/api/tasks/", {"title": "x"}).json()["remind_before"] is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.timedelta(0), "PT0S"),
        (dt.timedelta(seconds=30), "PT30S"),
        (dt.timedelta(minutes=1), "PT1M"),
        (dt.timedelta(hours=1), "PT1H"),
        (dt.timedelta(days=1), "P1D"),
        (dt.timedelta(days=1, seconds=5, microseconds=7), "P1DT5.000007S"),
        (dt.timedelta(days=3, hours=4, minutes=5, seconds=6), "P3DT4H5M6S"),
        (dt.timedelta(microseconds=500_000), "PT0.5S"),
        (-dt.timedelta(hours=1, minutes=30), "-PT1H30M"),
    ],
)
def test_iso_duration_writes_the_shortest_iso_8601(value, text):
    assert iso_duration(value) == text
    assert parse_duration(text) == value


def test_the_schema_says_remind_before_is_an_iso_8601_duration(anon_api):
    schema = json.loads(
        anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    components = schema["components"]["schemas"]

    for name in ("Task", "TaskRequest", "QuickAddPreview"):
        field = components[name]["properties"]["remind_before"]
        assert (field["type"], field["format"], field["example"]) == ("string", "duration", "PT30M")
        assert field["nullable"] is True


# --- date-times -----------------------------------------------------------------------------

#: A date-time string as the API writes one, and its offset (``Z`` or ``+hh:mm``).
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(?P<offset>Z|[+-]\d\d:\d\d)?$")


def date_times(value, path="") -> dict[str, str]:
    """Every string in ``value`` that looks like a date-time, by where it was found."""
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found.update(date_times(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.update(date_times(item, f"{path}[{i}]"))
    elif isinstance(value, str) and DATE_TIME.match(value):
        found[path] = value
    return found


def test_every_date_time_the_api_writes_carries_its_offset(api, alice, make_category):
    make_category(alice, "Work")
    api.post("/api/tags/", {"name": "home"})
    api.post("/api/views/", {"name": "Today", "filters": {"view": "today"}})
    api.post("/api/feed/")
    one_off = make_task(
        alice,
        title="Naive due date read in Tokyo",
        due_date=dt.datetime(2026, 12, 5, 9, 0),
        timezone="Asia/Tokyo",
        remind_before=dt.timedelta(hours=1),
    )
    repeat = api.post(
        "/api/tasks/",
        {
            "title": "Standup",
            "due_date": DUE,
            "timezone": "America/New_York",
            "recurrence_rule": "FREQ=WEEKLY;BYDAY=MO",
        },
    ).json()
    api.post(f"/api/tasks/{repeat['id']}/complete/")
    answers = {
        "tasks": api.get("/api/tasks/?view=all").json(),
        "task": api.get(f"/api/tasks/{one_off.pk}/").json(),
        "occurrences": api.get(f"/api/tasks/{repeat['id']}/occurrences/").json(),
        "categories": api.get("/api/categories/").json(),
        "tags": api.get("/api/tags/").json(),
        "views": api.get("/api/views/").json(),
        "tokens": api.get("/api/tokens/").json(),
        "feed": api.get("/api/feed/").json(),
        "parse": api.post(
            "/api/tasks/parse/", {"text": "Pay rent every month on the 1st at 9am"}
        ).json(),
        "preview": api.post(
            "/api/recurrence/preview/",
            {"rule": "FREQ=DAILY", "due_date": DUE, "timezone": "Asia/Kolkata", "count": 2},
        ).json(),
    }

    found = date_times(answers)

    assert {path.split(".")[1] for path in found} == set(answers)  # each answer has some
    missing = {path: text for path, text in found.items() if not DATE_TIME.match(text)["offset"]}
    assert missing == {}
    assert answers["task"]["due_date"] == "2026-12-05T09:00:00+09:00"
    assert answers["task"]["remind_at"] == "2026-12-05T08:00:00+09:00"
    assert answers["preview"]["occurrences"] == [
        "2026-12-05T09:00:00+05:30",
        "2026-12-06T09:00:00+05:30",
    ]
