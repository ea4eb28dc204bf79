"""Every request's size is bounded, and no input reaches a 500: each limit is a 400 (or a
413 for the body) naming the field or the problem, and the value just inside it works."""

import base64
import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import parsers as drf_parsers
from rest_framework.exceptions import ParseError

from tasks import services
from tasks.api.parsers import MAX_JSON_DEPTH, JSONParser, check_json_value
from tasks.models import MAX_DESCRIPTION_LENGTH, Tag, Task
from tasks.selectors import MAX_FILTER_TAGS, MAX_SEARCH_WORDS, tasks_after, with_cursor_key
from tasks.services import MAX_REMIND_BEFORE, MAX_TAGS_PER_TASK
from tests.factories import make_tag, make_task

pytestmark = pytest.mark.django_db

DUE = "2026-12-01T09:00:00Z"


def post_json_text(client, url: str, text: str):
    """POST ``text`` as it is (escapes such as ``\\ud800`` stay escapes) as JSON."""
    return client.generic("POST", url, text.encode(), content_type="application/json")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- JSON nesting depth ------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
@pytest.mark.parametrize("url", ["/api/tasks/", "/api/auth/register/", "/api/views/"])
def test_json_nested_too_deep_is_a_400_saying_so(api, url, depth):
    response = post_json_text(api, url, nested(depth))

    assert response.status_code == 400
    assert f"nested deeper than {MAX_JSON_DEPTH}" in response.json()["detail"]


def test_json_nested_too_deep_is_a_400_for_anonymous_clients(anon_api):
    response = post_json_text(anon_api, "/api/auth/register/", nested(1_000))

    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]


def test_json_nested_to_the_limit_is_parsed():
    check_json_value(json.loads(nested(MAX_JSON_DEPTH)))
    check_json_value({"a": json.loads(nested(MAX_JSON_DEPTH - 1))})

    with pytest.raises(ParseError, match="nested deeper"):
        check_json_value({"a": json.loads(nested(MAX_JSON_DEPTH))})


def test_drfs_own_parser_is_what_broke_on_deep_json():
    """The broken copy: DRF's parser lets the RecursionError out (a 500); ours does not."""
    import io

    body = nested(100_000).encode()
    with pytest.raises(RecursionError):
        drf_parsers.JSONParser().parse(io.BytesIO(body))
    with pytest.raises(ParseError):
        JSONParser().parse(io.BytesIO(body))


# --- lone surrogates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url,body,where",
    [
        ("/api/auth/register/", '{"\\ud800": 1}', "a key of the object at $"),
        ("/api/tasks/", '{"title": "x", "priority": "\\ud800"}', "$.priority"),
        ("/api/tasks/", '{"title": "x", "tags": ["ok", "\\udfff"]}', "$.tags[1]"),
        ("/api/tasks/", '{"title": "a\\ud83d"}', "$.title"),
        ("/api/views/", '{"name": "v", "filters": {"search": "\\ude00"}}', "$.filters.search"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_where_it_is(api, url, body, where):
    response = post_json_text(api, url, body)

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert where in detail and "surrogate" in detail


def test_a_surrogate_pair_is_a_character_and_accepted(api):
    response = post_json_text(api, "/api/tasks/", '{"title": "wave \\ud83d\\udc4b"}')

    assert response.status_code == 201
    assert response.json()["title"] == "wave \U0001f44b"


# --- the request body's size -------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/tasks/", "/api/auth/register/"])
def test_a_body_over_the_upload_limit_is_a_json_413(api, settings, url):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = json.dumps({"title": "x" * 1_000})

    response = post_json_text(api, url, body)

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == "The request body is larger than 1000 bytes."


def test_a_body_within_the_upload_limit_is_read(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = json.dumps({"title": "x", "description": "d" * 900})

    assert post_json_text(api, "/api/tasks/", body).status_code == 201


def test_too_many_form_fields_is_a_json_400(api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    form = "&".join(f"f{i}=1" for i in range(11))

    response = api.generic(
        "POST", "/api/tasks/", form, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400
    assert "parameters exceeded" in response.json()["detail"]


# --- tags per task, and resolving them ---------------------------------------------------


def tag_names(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_a_task_with_too_many_tags_is_a_400_naming_tags(api):
    response = api.post("/api/tasks/", {"title": "x", "tags": tag_names(MAX_TAGS_PER_TASK + 1)})

    assert response.status_code == 400
    assert "tags" in response.json()
    assert not Tag.objects.exists()


def test_a_task_with_the_most_tags_is_created(api):
    response = api.post("/api/tasks/", {"title": "x", "tags": tag_names(MAX_TAGS_PER_TASK)})

    assert response.status_code == 201
    assert len(response.json()["tags"]) == MAX_TAGS_PER_TASK


def test_the_service_bounds_tags_for_every_write_path(alice):
    with pytest.raises(ValidationError) as caught:
        make_task(alice, tags=tag_names(MAX_TAGS_PER_TASK + 1))
    assert "tags" in caught.value.message_dict

    task = make_task(alice, tags=[*tag_names(MAX_TAGS_PER_TASK), "T0", "t1 "])
    assert task.tags.count() == MAX_TAGS_PER_TASK  # the same name in any case counts once


def test_adding_tags_past_the_limit_by_patch_is_a_400(api, alice):
    task = make_task(alice, tags=tag_names(MAX_TAGS_PER_TASK))

    names = [*tag_names(MAX_TAGS_PER_TASK), "one more"]
    response = api.patch(f"/api/tasks/{task.pk}/", {"tags": names})

    assert response.status_code == 400
    assert "tags" in response.json()
    assert task.tags.count() == MAX_TAGS_PER_TASK


#: tags_resolve runs in its own savepoint (a @task_service): SAVEPOINT and RELEASE.
SAVEPOINT_QUERIES = 2


@pytest.mark.parametrize("new_tags", [1, MAX_TAGS_PER_TASK - 1])
def test_resolving_new_tags_takes_the_same_queries_for_1_and_49(
    alice, django_assert_num_queries, new_tags
):
    make_tag(alice, "existing")

    # Read, insert the missing ones, read again.
    with django_assert_num_queries(3 + SAVEPOINT_QUERIES):
        tags = services.tags_resolve(user=alice, names=["EXISTING", *tag_names(new_tags)])

    assert len(tags) == new_tags + 1
    assert Tag.objects.filter(user=alice).count() == new_tags + 1


@pytest.mark.parametrize("known_tags", [1, MAX_TAGS_PER_TASK])
def test_resolving_known_tags_is_one_query(alice, django_assert_num_queries, known_tags):
    services.tags_resolve(user=alice, names=tag_names(known_tags))

    with django_assert_num_queries(1 + SAVEPOINT_QUERIES):
        tags = services.tags_resolve(user=alice, names=[n.upper() for n in tag_names(known_tags)])

    assert sorted(t.name for t in tags) == sorted(tag_names(known_tags))


def test_creating_a_task_takes_the_same_queries_for_1_and_the_most_new_tags(
    api, django_assert_num_queries
):
    api.post("/api/tasks/", {"title": "warm up"})  # the profile exists from here on
    with CaptureQueriesContext(connection) as one_tag:
        response = api.post("/api/tasks/", {"title": "one", "tags": ["a"]})
    assert response.status_code == 201

    with django_assert_num_queries(len(one_tag.captured_queries)):
        response = api.post("/api/tasks/", {"title": "fifty", "tags": tag_names(MAX_TAGS_PER_TASK)})

    assert response.status_code == 201
    assert len(response.json()["tags"]) == MAX_TAGS_PER_TASK


def test_resolving_keeps_case_insensitive_names_and_the_first_spelling(alice, bob):
    home = make_tag(alice, "Home")
    make_tag(bob, "work")

    tags = services.tags_resolve(user=alice, names=["HOME", "home", "Work", "work"])

    assert sorted(t.name for t in tags) == ["Home", "Work"]
    assert home in tags
    assert Tag.objects.filter(user=alice).count() == 2
    assert Tag.objects.filter(user=bob).count() == 1


def test_resolving_no_names_is_no_query(alice, django_assert_num_queries):
    with django_assert_num_queries(SAVEPOINT_QUERIES):
        assert services.tags_resolve(user=alice, names=[]) == []


# --- description -------------------------------------------------------------------------


def test_a_description_over_the_limit_is_a_400_naming_description(api):
    response = api.post(
        "/api/tasks/", {"title": "x", "description": "d" * (MAX_DESCRIPTION_LENGTH + 1)}
    )

    assert response.status_code == 400
    assert "description" in response.json()


def test_a_description_at_the_limit_is_saved(api):
    response = api.post("/api/tasks/", {"title": "x", "description": "d" * MAX_DESCRIPTION_LENGTH})

    assert response.status_code == 201
    assert len(response.json()["description"]) == MAX_DESCRIPTION_LENGTH


def test_the_model_bounds_the_description_for_every_write_path(alice):
    task = make_task(alice)

    with pytest.raises(ValidationError) as caught:
        services.task_update(task=task, data={"description": "d" * (MAX_DESCRIPTION_LENGTH + 1)})
    assert "description" in caught.value.message_dict

    task.description = "d" * (MAX_DESCRIPTION_LENGTH + 1)
    with pytest.raises(ValidationError) as caught:
        task.full_clean()  # what the admin's form runs
    assert "description" in caught.value.message_dict


# --- string lengths, as sent --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "error"),
    [
        (
            "/api/tasks/",
            {"title": " " + "a" * 255},
            {"title": ["Ensure this field has no more than 255 characters."]},
        ),
        (
            "/api/tasks/",
            {"title": "a", "tags": ["\u001d" + "b" * 50]},
            {"tags": {"0": ["Ensure this field has no more than 50 characters."]}},
        ),
        (
            "/api/tokens/",
            {"name": "\u001d" + "c" * 100},
            {"name": ["Ensure this field has no more than 100 characters."]},
        ),
    ],
    ids=["title", "tag", "token-name"],
)
def test_a_string_longer_than_its_limit_as_sent_is_a_400_even_if_trimming_would_fit(
    api, url, body, error
):
    # The schema's maxLength counts the characters sent; DRF alone trims whitespace first.
    response = api.post(url, body, format="json")

    assert response.status_code == 400
    assert response.json() == error


def test_whitespace_around_a_string_within_its_limit_is_trimmed(api):
    response = api.post(
        "/api/tasks/", {"title": "  Pay rent  ", "tags": [" bills "]}, format="json"
    )

    assert response.status_code == 201
    assert (response.json()["title"], response.json()["tags"]) == ("Pay rent", ["bills"])


# --- remind_before -----------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["P999999D", "P999999999D", f"P{MAX_REMIND_BEFORE.days + 1}D"])
def test_a_reminder_too_long_before_is_a_400_naming_remind_before(api, offset):
    response = api.post("/api/tasks/", {"title": "x", "due_date": DUE, "remind_before": offset})

    assert response.status_code == 400
    assert "remind_before" in response.json()


def test_a_reminder_the_longest_before_is_accepted(api):
    response = api.post(
        "/api/tasks/",
        {"title": "x", "due_date": DUE, "remind_before": f"P{MAX_REMIND_BEFORE.days}D"},
    )

    assert response.status_code == 201
    assert response.json()["remind_at"].startswith("2025-12-01T09:00:00")


def test_a_patch_to_a_huge_remind_before_is_a_400(api, alice):
    task = make_task(alice, due_date=dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC))

    response = api.patch(f"/api/tasks/{task.pk}/", {"remind_before": "P999999D"})

    assert response.status_code == 400
    assert "remind_before" in response.json()


# --- digits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page_size", ["\u00b2", "\u0661\u0660", "\uff15", "-1", "0", "201", "1e2", "9" * 5000]
)
def test_a_page_size_not_in_ascii_digits_within_range_is_a_400(api, page_size):
    response = api.get("/api/tasks/", {"page_size": page_size})

    assert response.status_code == 400
    assert "page_size" in response.json()


def test_an_ascii_page_size_is_used(api, alice):
    for i in range(3):
        make_task(alice, title=f"t{i}")

    response = api.get("/api/tasks/", {"page_size": "2"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


# --- date filters with any UTC offset ----------------------------------------------------


@pytest.mark.parametrize(
    "bound,included",
    [
        ("2026-01-02T01:00:00+16:00", False),  # 09:00 UTC, before the task's 10:00
        ("2026-01-02T03:00:00+16:00", True),  # 11:00 UTC
        ("2025-12-31T16:00:00-18:00", True),  # 10:00 UTC the next day
        ("2025-12-31T15:00:00-18:00", False),
    ],
)
def test_date_filters_take_any_offset_python_accepts(api, alice, bound, included):
    make_task(alice, title="due", due_date=dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC))

    response = api.get("/api/tasks/", {"due_before": bound})

    assert response.status_code == 200
    assert [t["title"] for t in response.json()["results"]] == (["due"] if included else [])


@pytest.mark.parametrize("field", ["due_before", "due_after", "created_before", "created_after"])
def test_a_date_filter_with_an_offset_of_a_day_is_a_400(api, field):
    response = api.get("/api/tasks/", {field: "2026-01-01T00:00:00+24:00"})

    assert response.status_code == 400
    assert field in response.json()


def cursor(value, last_id) -> str:
    return base64.urlsafe_b64encode(json.dumps([value, last_id]).encode()).decode()


def test_a_load_more_cursor_with_any_offset_is_read_in_utc(alice):
    make_task(alice, title="due", due_date=dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC))
    rows = with_cursor_key(Task.objects.for_user(alice), sort_by="due_date")

    after = tasks_after(
        rows, sort_by="due_date", descending=False, cursor=cursor("2026-01-02T01:00:00+16:00", 0)
    )

    assert [t.title for t in after] == ["due"]


@pytest.mark.parametrize(
    "sort_by,value,last_id",
    [
        ("due_date", "2026-01-01T00:00:00", 1),  # naive: never made by task_cursor
        ("due_date", "0001-01-01T00:00:00+05:00", 1),  # before year 1 in UTC
        ("priority", 2**63, 1),
        ("priority", None, 1),
        ("title", "\ud800", 1),
        ("title", ["a"], 1),
        ("title", "a", 2**63),
        ("title", "a", "1"),
    ],
)
def test_a_forged_load_more_cursor_is_a_validation_error(alice, sort_by, value, last_id):
    rows = with_cursor_key(Task.objects.for_user(alice), sort_by=sort_by)

    with pytest.raises(ValidationError) as caught:
        list(tasks_after(rows, sort_by=sort_by, descending=False, cursor=cursor(value, last_id)))
    assert "after" in caught.value.message_dict


def test_a_deeply_nested_load_more_cursor_is_a_validation_error(alice):
    rows = with_cursor_key(Task.objects.for_user(alice), sort_by="title")
    deep = base64.urlsafe_b64encode(nested(100_000).encode()).decode()

    with pytest.raises(ValidationError):
        tasks_after(rows, sort_by="title", descending=False, cursor=deep)


# --- free-text filters -------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("search", " ".join(["w"] * (MAX_SEARCH_WORDS + 1))),
        ("search", " ".join(["w"] * 1_000)),
        ("search", " ".join(["w"] * 5_000)),
        ("search", "x" * 201),
        ("tags", ",".join(tag_names(MAX_FILTER_TAGS + 1))),
        ("tags", ",".join(tag_names(200))),
        ("tags_all", ",".join(tag_names(MAX_FILTER_TAGS + 1))),
        ("tags_all", ",".join(tag_names(200))),
        ("tags_all", ",".join(tag_names(1_000))),
    ],
)
def test_a_free_text_filter_over_its_bound_is_a_400_naming_it(api, field, value):
    response = api.get("/api/tasks/", {field: value})

    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize(
    "field,value",
    [
        ("search", " ".join(["w"] * MAX_SEARCH_WORDS)),
        ("tags", ",".join(tag_names(MAX_FILTER_TAGS))),
        ("tags_all", ",".join(tag_names(MAX_FILTER_TAGS))),
    ],
)
def test_a_free_text_filter_at_its_bound_is_applied(api, alice, field, value):
    make_task(alice, title=" ".join(["w"] * 3), tags=tag_names(MAX_FILTER_TAGS))
    make_task(alice, title="other")

    response = api.get("/api/tasks/", {field: value})

    assert response.status_code == 200
    assert [t["title"] for t in response.json()["results"]] == ["w w w"]
