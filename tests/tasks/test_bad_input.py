"""Bad input is a 400 that names the field: never a 500, never silently accepted."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError

from tasks.api.exceptions import exception_handler
from tasks.models import Category, Tag, Task
from tests.factories import make_category, make_tag, make_task

DUE = "2026-12-01T09:00:00Z"

#: (payload besides a valid title, the field the 400 must name)
TASK_FIELD_ERRORS = [
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "\t\n"}, "title"),
    ({"title": "x" * 256}, "title"),
    ({"title": None}, "title"),
    ({"title": ["a list"]}, "title"),
    ({"priority": "extreme"}, "priority"),
    ({"priority": "HIGH"}, "priority"),
    ({"priority": ""}, "priority"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": "EST5EDT,M3.2.0"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"timezone": "Mars/Olympus", "due_date": "2026-12-01T09:00:00"}, "timezone"),
    ({"due_date": "tomorrow"}, "due_date"),
    ({"due_date": "2026-02-30T09:00:00"}, "due_date"),
    ({"due_date": "01/12/2026"}, "due_date"),
    ({"remind_at": "soon"}, "remind_at"),
    ({"category": 999999}, "category"),
    ({"category": "work"}, "category"),
    ({"tags": "home"}, "tags"),
    ({"tags": [""]}, "tags"),
    ({"tags": ["   "]}, "tags"),
    ({"tags": ["x" * 51]}, "tags"),
    ({"tags": [None]}, "tags"),
    ({"completed": "maybe"}, "completed"),
    ({"prority": "high"}, "prority"),
    ({"due": DUE}, "due"),
    ({"recurrence_rule": "FREQ=SOMETIMES"}, "recurrence_rule"),
    ({"recurrence_rule": "INTERVAL=2"}, "recurrence_rule"),
    ({"recurrence_rule": "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"}, "recurrence_rule"),
    ({"recurrence_rule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "recurrence_rule"),
    ({"recurrence_rule": "FREQ=WEEKLY", "recurrence_type": "weekly"}, "recurrence_rule"),
    ({"recurrence_type": "fortnightly"}, "recurrence_type"),
    ({"recurrence_interval": 0}, "recurrence_interval"),
    ({"recurrence_interval": -3}, "recurrence_interval"),
    ({"recurrence_interval": 10**20}, "recurrence_interval"),
    ({"recurrence_mode": "whenever"}, "recurrence_mode"),
    ({"remind_before": "01:00:00"}, "remind_before"),
    ({"remind_before": "an hour", "due_date": DUE}, "remind_before"),
    ({"remind_before": "-01:00:00", "due_date": DUE}, "remind_before"),
    ({"remind_at": "2026-12-01T10:00:00Z", "due_date": DUE}, "remind_at"),
    (
        {"remind_at": "2026-12-01T08:00:00Z", "remind_before": "00:30:00", "due_date": DUE},
        "remind_before",
    ),
]


def ids(table) -> list[str]:
    return ["-".join(f"{k}={str(v)[:20]}" for k, v in payload.items()) for payload, _ in table]


@pytest.mark.parametrize(("payload", "field"), TASK_FIELD_ERRORS, ids=ids(TASK_FIELD_ERRORS))
def test_creating_a_task_with_bad_input_is_400_naming_the_field(api, alice, payload, field):
    response = api.post("/api/tasks/", {"title": "Valid title", **payload})

    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert not Task.objects.exists()


@pytest.mark.parametrize(("payload", "field"), TASK_FIELD_ERRORS, ids=ids(TASK_FIELD_ERRORS))
def test_patching_a_task_with_bad_input_is_400_naming_the_field(api, alice, payload, field):
    task = make_task(alice, title="Untouched")

    response = api.patch(f"/api/tasks/{task.pk}/", payload)

    assert response.status_code == 400, response.json()
    assert field in response.json()
    stored = Task.objects.get(pk=task.pk)
    assert (stored.title, stored.priority, stored.due_date) == ("Untouched", "medium", None)


def test_a_preset_interval_beyond_the_rrule_limit_is_400_naming_recurrence_interval(api, alice):
    response = api.post(
        "/api/tasks/",
        {"title": "Too sparse", "recurrence_type": "weekly", "recurrence_interval": 5000},
    )

    assert response.status_code == 400
    assert "recurrence_interval" in response.json()
    assert not Task.objects.exists()
    assert api.get("/api/tasks/").status_code == 200


def test_creating_a_task_without_a_title_is_400_naming_title(api, alice):
    response = api.post("/api/tasks/", {"priority": "high"})

    assert response.status_code == 400
    assert "title" in response.json()


def test_a_255_character_title_is_accepted(api, alice):
    assert api.post("/api/tasks/", {"title": "x" * 255}).status_code == 201


def test_a_typo_in_a_put_is_400_even_with_the_whole_task_sent_back(api, alice):
    task = make_task(alice, priority="low")
    body = api.get(f"/api/tasks/{task.pk}/").json()

    response = api.put(f"/api/tasks/{task.pk}/", {**body, "prority": "urgent"})

    assert response.status_code == 400
    assert "prority" in response.json()
    assert Task.objects.get(pk=task.pk).priority == "low"


@pytest.mark.parametrize(
    "read_only",
    [
        {"id": 123456},
        {"completed_at": "2020-01-01T00:00:00Z"},
        {"reminder_sent": True},
        {"next_occurrence_at": "2020-01-01T00:00:00Z"},
        {"last_triggered_at": "2020-01-01T00:00:00Z"},
        {"parent": 1},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"updated_at": "2020-01-01T00:00:00Z"},
    ],
    ids=lambda d: next(iter(d)),
)
def test_read_only_fields_sent_back_are_accepted_and_ignored(api, alice, read_only):
    task = make_task(alice)
    before = api.get(f"/api/tasks/{task.pk}/").json()

    response = api.patch(f"/api/tasks/{task.pk}/", {"title": "Renamed", **read_only})

    assert response.status_code == 200, response.json()
    after = response.json()
    field = next(iter(read_only))
    if field != "updated_at":
        assert after[field] == before[field]


def test_giving_both_a_changed_remind_at_and_remind_before_is_400(api, alice):
    task = make_task(alice, due_date=dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC))
    body = api.patch(f"/api/tasks/{task.pk}/", {"remind_before": "00:30:00"}).json()

    response = api.put(f"/api/tasks/{task.pk}/", {**body, "remind_at": "2026-12-01T07:00:00Z"})

    assert response.status_code == 400
    assert "remind_before" in response.json()


# --- malformed bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/tasks/"),
        ("patch", "/api/tasks/{task}/"),
        ("put", "/api/tasks/{task}/"),
        ("post", "/api/categories/"),
        ("post", "/api/tags/"),
        ("patch", "/api/me/"),
        ("post", "/api/auth/register/"),
    ],
)
@pytest.mark.parametrize("body", ['{"title": ', "not json", '{"title": "a",}'])
def test_malformed_json_is_400(api, alice, method, path, body):
    task = make_task(alice)

    response = getattr(api, method)(
        path.format(task=task.pk), data=body, content_type="application/json"
    )

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize("body", [[{"title": "in a list"}], "just a string", 42])
def test_a_json_body_that_is_not_an_object_is_400(api, alice, body):
    response = api.post("/api/tasks/", body, format="json")

    assert response.status_code == 400
    assert "non_field_errors" in response.json()


# --- categories and tags ------------------------------------------------------------------------

CATEGORY_FIELD_ERRORS = [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "Work"}, "name"),
    ({"name": "work"}, "name"),
    ({"name": " WORK "}, "name"),
    ({"color": "red"}, "color"),
    ({"color": "#12345g"}, "color"),
    ({"color": "#fff"}, "color"),
    ({"color": "3b82f6"}, "color"),
    ({"color": "#3b82f6ff"}, "color"),
    ({"colour": "#000000"}, "colour"),
    ({"task_count": 5, "colour": "#000000"}, "colour"),
]


@pytest.mark.parametrize(
    ("payload", "field"), CATEGORY_FIELD_ERRORS, ids=ids(CATEGORY_FIELD_ERRORS)
)
def test_creating_a_category_with_bad_input_is_400_naming_the_field(api, alice, payload, field):
    make_category(alice, "Work")

    response = api.post("/api/categories/", {"name": "Home", **payload})

    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert Category.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"), CATEGORY_FIELD_ERRORS, ids=ids(CATEGORY_FIELD_ERRORS)
)
def test_patching_a_category_with_bad_input_is_400_naming_the_field(api, alice, payload, field):
    make_category(alice, "Work")
    home = make_category(alice, "Home", color="#16a34a")

    response = api.patch(f"/api/categories/{home.pk}/", payload)

    assert response.status_code == 400, response.json()
    assert field in response.json()
    stored = Category.objects.get(pk=home.pk)
    assert (stored.name, stored.color) == ("Home", "#16a34a")


TAG_FIELD_ERRORS = [
    ({"name": ""}, "name"),
    ({"name": "  "}, "name"),
    ({"name": "x" * 51}, "name"),
    ({"name": "home"}, "name"),
    ({"name": "HOME"}, "name"),
    ({"nmae": "x"}, "nmae"),
]


@pytest.mark.parametrize(("payload", "field"), TAG_FIELD_ERRORS, ids=ids(TAG_FIELD_ERRORS))
def test_creating_a_tag_with_bad_input_is_400_naming_the_field(api, alice, payload, field):
    make_tag(alice, "home")

    response = api.post("/api/tags/", {"name": "new", **payload})

    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert Tag.objects.count() == 1


@pytest.mark.parametrize(("payload", "field"), TAG_FIELD_ERRORS, ids=ids(TAG_FIELD_ERRORS))
def test_renaming_a_tag_with_bad_input_is_400_naming_the_field(api, alice, payload, field):
    make_tag(alice, "home")
    work = make_tag(alice, "work")

    response = api.patch(f"/api/tags/{work.pk}/", payload)

    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert Tag.objects.get(pk=work.pk).name == "work"


# --- filters ----------------------------------------------------------------------------------

FILTER_ERRORS = [
    ("priority=extreme", "priority"),
    ("priority=high,extreme", "priority"),
    ("status=done", "status"),
    ("completed=maybe", "completed"),
    ("overdue=perhaps", "overdue"),
    ("has_due_date=sometimes", "has_due_date"),
    ("has_recurrence=often", "has_recurrence"),
    ("completed=yes", "completed"),
    ("overdue=2", "overdue"),
    ("category=work", "category"),
    ("category=999999", "category"),
    ("due_before=tomorrow", "due_before"),
    ("due_after=2026-13-01", "due_after"),
    ("due_after=2026-02-30", "due_after"),
    ("created_after=yesterday", "created_after"),
    ("created_before=2026-12-01T25:00:00", "created_before"),
    ("ordering=prority", "ordering"),
    ("sort_by=importance", "sort_by"),
    ("sort_order=up", "sort_order"),
    ("page_size=201", "page_size"),
]


@pytest.mark.parametrize(("query", "field"), FILTER_ERRORS, ids=[q for q, _ in FILTER_ERRORS])
def test_a_bad_filter_value_is_400_naming_the_parameter(api, alice, query, field):
    make_task(alice)

    response = api.get(f"/api/tasks/?{query}")

    assert response.status_code == 400, response.json()
    assert field in response.json()


# --- the one exception handler -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (DjangoValidationError({"title": "Bad."}), {"title": ["Bad."]}),
        (DjangoValidationError({"__all__": "Clash."}), {"non_field_errors": ["Clash."]}),
        (DjangoValidationError("Plain."), {"non_field_errors": ["Plain."]}),
        (DjangoValidationError(["One.", "Two."]), {"non_field_errors": ["One.", "Two."]}),
    ],
)
def test_service_validation_errors_become_400s_naming_the_field(error, expected):
    response = exception_handler(error, {})

    assert response.status_code == 400
    assert response.data == expected


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"due_date": "9999-12-31T23:00:00", "timezone": "America/New_York"}, "due_date"),
        ({"due_date": "0001-01-01T00:30:00", "timezone": "Asia/Tokyo"}, "due_date"),
        ({"remind_at": "9999-12-31T23:00:00"}, "remind_at"),
    ],
)
def test_a_date_too_far_out_to_convert_between_zones_is_400(api, alice, payload, field):
    response = api.post("/api/tasks/", {"title": "Far out", **payload})

    assert response.status_code == 400
    assert field in response.json()
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "query", ["due_before=9999-12-31", "due_after=9999-12-31T23:00:00", "due_before=0001-01-01"]
)
def test_a_date_filter_at_the_end_of_the_calendar_is_400(api, alice, query):
    response = api.get(f"/api/tasks/?{query}")

    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_a_weak_password_is_400_naming_password(anon_api, db):
    response = anon_api.post(
        "/api/auth/register/", {"username": "zed", "email": "zed@example.com", "password": "123"}
    )

    assert response.status_code == 400
    assert "password" in response.json()


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("search=" + "+".join(["a"] * 21), "search", "Search for at most 20 words."),
        ("search=" + "x" * 201, "search", "Ensure this value has at most 200 characters"),
        ("tags=" + ",".join(f"t{i}" for i in range(21)), "tags", "Filter by at most 20 tags."),
        ("tags_all=" + ",".join(f"t{i}" for i in range(21)), "tags_all", "at most 20 tags"),
    ],
)
def test_free_text_filters_are_bounded(api, query, field, message):
    response = api.get(f"/api/tasks/?{query}")

    assert response.status_code == 400
    assert message in response.json()[field][0]


def test_twenty_search_words_and_tags_are_still_fine(api):
    words = "+".join(["a"] * 20)
    tags = ",".join(f"t{i}" for i in range(20))

    response = api.get(f"/api/tasks/?search={words}&tags={tags}&tags_all={tags}")

    assert response.status_code == 200
