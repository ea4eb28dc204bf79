"""The MCP tools do what the REST API does, for the user they act for: the same tasks, the
same filters, the same refusals naming the field; another user's tasks do not exist."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from tasks.models import Task
from tests.factories import make_category, make_task

TOOLS = {
    "list_tasks",
    "get_task",
    "add_task",
    "update_task",
    "complete_task",
    "reopen_task",
    "delete_task",
    "list_categories",
    "list_tags",
    "preview_recurrence",
}


def ok(result) -> dict:
    assert not result.is_error, result.content[0].text
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def refused(result) -> dict:
    assert result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def test_the_tools_are_listed_with_the_apis_choices(tools):
    assert set(tools) == TOOLS
    priority = tools["add_task"].input_schema["properties"]["priority"]["anyOf"][0]
    assert priority == {"type": "string", "enum": ["low", "medium", "high", "urgent"]}
    assert tools["get_task"].input_schema["required"] == ["task_id"]
    assert tools["list_tasks"].annotations.read_only_hint is True


def test_quick_add_creates_the_task_the_api_shows(alice, api, call):
    task = ok(call(alice, "add_task", text="Water plants every monday p2 @garden"))

    assert (task["title"], task["priority"]) == ("Water plants", "high")
    assert (task["recurrence_rule"], task["tags"]) == ("FREQ=WEEKLY;BYDAY=MO", ["garden"])
    assert task["recurrence_description"] == "every week on Monday"
    assert (
        ok(call(alice, "get_task", task_id=task["id"]))
        == api.get(f"/api/tasks/{task['id']}/").json()
    )


def test_a_task_from_fields_is_validated_by_the_apis_serializer(alice, call, make_category):
    work = make_category(alice, "Work")
    task = ok(
        call(
            alice,
            "add_task",
            title="Write the report",
            priority="urgent",
            due_date="2030-03-01T17:00:00",
            timezone="Europe/London",
            category=work.pk,
            tags=["q4", "work"],
            remind_before="01:00:00",
        )
    )
    assert task["due_date"] == "2030-03-01T17:00:00Z"
    assert task["remind_before"] == "PT1H"  # ISO 8601, as the API writes it
    assert (task["category"], task["tags"], task["remind_at"]) == (
        work.pk,
        ["q4", "work"],
        "2030-03-01T16:00:00Z",
    )


@pytest.mark.parametrize(
    ("arguments", "errors"),
    [
        ({"title": "Pay", "priority": "hgh"}, {"priority": ['"hgh" is not a valid choice.']}),
        ({"title": ""}, {"title": ["This field may not be blank."]}),
        ({"title": "Pay", "timezone": "US/Eastern"}, {"timezone": None}),
        ({"title": "Pay", "recurrence_rule": "FREQ=SOMETIMES"}, {"recurrence_rule": None}),
        ({"title": "Pay", "category": 999999}, {"category": ["Category 999999 not found."]}),
        ({"text": "   "}, {"text": ["This field may not be blank."]}),
        (
            {"text": "Pay rent", "title": "Pay rent"},
            {"text": ["Give either the text to quick add or the task's fields, not both."]},
        ),
    ],
)
def test_bad_input_is_a_tool_error_naming_the_field(alice, call, arguments, errors):
    body = refused(call(alice, "add_task", **arguments))

    assert body.keys() == errors.keys()
    for field, messages in errors.items():
        assert messages is None or body[field] == messages
    assert not Task.objects.exists()


def test_the_refusal_is_the_apis_own(alice, api, call):
    body = refused(
        call(
            alice,
            "add_task",
            title="Pay",
            recurrence_rule="FREQ=WEEKLY;COUNT=2;UNTIL=20300101T000000Z",
        )
    )
    answer = api.post(
        "/api/tasks/",
        {"title": "Pay", "recurrence_rule": "FREQ=WEEKLY;COUNT=2;UNTIL=20300101T000000Z"},
    )

    assert answer.status_code == 400
    assert body == answer.json()


def test_list_tasks_filters_and_sorts_as_the_api_does(alice, api, call):
    for title, priority, tags in [
        ("Report", "urgent", ["work"]),
        ("Slides", "high", ["work"]),
        ("Milk", "low", ["home"]),
        ("Call", "high", []),
    ]:
        make_task(alice, title=title, priority=priority, tags=tags)

    listed = ok(call(alice, "list_tasks", priority=["high", "urgent"], ordering="-priority"))
    through_api = api.get("/api/tasks/?priority=high,urgent&ordering=-priority").json()

    assert [task["title"] for task in listed["results"]] == ["Report", "Call", "Slides"]
    assert listed["results"] == through_api["results"]
    assert (listed["count"], listed["pages"], listed["next_page"]) == (3, 1, None)
    tagged = ok(call(alice, "list_tasks", tags=["work"], search="rep"))
    assert [task["title"] for task in tagged["results"]] == ["Report"]


def test_the_smart_views_are_the_apis(alice, call):
    now = timezone.now()
    make_task(alice, title="Late", due_date=now - dt.timedelta(days=2))
    make_task(alice, title="Soon", due_date=now + dt.timedelta(days=3))
    done = make_task(alice, title="Done")
    Task.objects.filter(pk=done.pk).update(completed=True, completed_at=now)

    def titles(**filters) -> list[str]:
        return [task["title"] for task in ok(call(alice, "list_tasks", **filters))["results"]]

    assert titles(view="today") == ["Late"]
    assert titles(view="upcoming") == ["Soon"]
    assert titles(view="completed") == ["Done"]
    assert titles(overdue=True) == ["Late"]


def test_a_saved_view_lists_its_filters(alice, call, api):
    make_task(alice, title="Report", priority="urgent")
    make_task(alice, title="Milk", priority="low")
    view = api.post(
        "/api/views/", {"name": "Urgent", "filters": {"priority": "urgent"}}, format="json"
    ).json()

    listed = ok(call(alice, "list_tasks", saved_view=view["id"]))

    assert [task["title"] for task in listed["results"]] == ["Report"]
    assert refused(call(alice, "list_tasks", saved_view=view["id"] + 1)) == {
        "saved_view": [f"Saved view {view['id'] + 1} not found."]
    }


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"due_after": "someday"}, "due_after"),
        ({"search": "x " * 21}, "search"),
        ({"category": 999999}, "category"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 201}, "page_size"),
        ({"page": 2}, "page"),
    ],
)
def test_a_bad_filter_or_page_is_refused_naming_it(alice, call, arguments, field):
    make_task(alice, title="Report")

    assert list(refused(call(alice, "list_tasks", **arguments))) == [field]


def test_update_changes_some_fields_and_clears_others(alice, call):
    task = make_task(alice, title="Report", due_date=timezone.now(), priority="low")

    changed = ok(call(alice, "update_task", task_id=task.pk, title="Q4 report", clear=["due_date"]))

    assert (changed["title"], changed["due_date"], changed["priority"]) == (
        "Q4 report",
        None,
        "low",
    )
    assert refused(
        call(
            alice,
            "update_task",
            task_id=task.pk,
            due_date="2030-01-01T09:00:00",
            clear=["due_date"],
        )
    ) == {"due_date": ["Given and cleared: do one or the other."]}


def test_complete_reopen_and_delete(alice, call):
    task = make_task(alice, title="Report")

    assert ok(call(alice, "complete_task", task_id=task.pk))["completed"] is True
    assert ok(call(alice, "reopen_task", task_id=task.pk))["completed"] is False
    assert ok(call(alice, "delete_task", task_id=task.pk)) == {"deleted": task.pk}
    assert refused(call(alice, "get_task", task_id=task.pk)) == {
        "detail": f"Task {task.pk} not found."
    }


def test_completing_a_repeating_task_tells_its_next_due_date(alice, call):
    task = ok(call(alice, "add_task", text="Water plants every monday starting 2030-01-07 p2"))

    completed = ok(call(alice, "complete_task", task_id=task["id"]))

    assert completed["next_occurrence_at"] == "2030-01-14T09:00:00Z"


def test_another_users_tasks_do_not_exist(alice, bob, call):
    task = make_task(alice, title="Alice's secret", priority="low")

    assert ok(call(bob, "list_tasks"))["count"] == 0
    assert ok(call(bob, "list_tasks", search="secret"))["results"] == []
    for tool, arguments in [
        ("get_task", {}),
        ("update_task", {"priority": "urgent"}),
        ("complete_task", {}),
        ("reopen_task", {}),
        ("delete_task", {}),
    ]:
        body = refused(call(bob, tool, task_id=task.pk, **arguments))
        assert body == {"detail": f"Task {task.pk} not found."}, tool
    task.refresh_from_db()
    assert (task.priority, task.completed) == ("low", False)


def test_another_users_category_is_refused(alice, bob, call):
    category = make_category(alice, "Alice's")

    assert refused(call(bob, "add_task", title="Mine", category=category.pk)) == {
        "category": [f"Category {category.pk} not found."]
    }
    assert refused(call(bob, "list_tasks", category=category.pk)).keys() == {"category"}
    assert ok(call(bob, "list_categories"))["results"] == []


def test_without_a_user_every_tool_refuses(alice, call):
    make_task(alice, title="Report")

    assert refused(call(None, "list_tasks")) == {
        "detail": "Authentication credentials were not provided."
    }


def test_categories_and_tags_with_their_counts(alice, call):
    work = make_category(alice, "Work")
    make_task(alice, title="Report", category=work, tags=["q4"])
    done = make_task(alice, title="Slides", category=work, tags=["q4"])
    Task.objects.filter(pk=done.pk).update(completed=True)

    [category] = ok(call(alice, "list_categories"))["results"]
    [tag] = ok(call(alice, "list_tags"))["results"]

    assert (category["name"], category["task_count"], category["pending_count"]) == ("Work", 2, 1)
    assert (tag["name"], tag["task_count"], tag["pending_count"]) == ("q4", 2, 1)


def test_preview_recurrence_is_the_apis(alice, api, call):
    arguments = {
        "rule": "FREQ=MONTHLY;BYMONTHDAY=-1",
        "due_date": "2030-01-31T18:00:00",
        "timezone": "Europe/Paris",
        "count": 3,
    }

    preview = ok(call(alice, "preview_recurrence", **arguments))

    assert preview == api.post("/api/recurrence/preview/", arguments, format="json").json()
    assert preview["occurrences"][1] == "2030-02-28T18:00:00+01:00"
    assert refused(call(alice, "preview_recurrence", rule="FREQ=SOMETIMES")).keys() == {"rule"}


def test_the_views_are_resources(alice, bob, api, read):
    make_task(alice, title="Late", due_date=timezone.now() - dt.timedelta(days=1))
    make_task(alice, title="Someday")
    view = api.post(
        "/api/views/", {"name": "All", "filters": {"ordering": "title"}}, format="json"
    ).json()

    today = json.loads(read(alice, "tideline://views/today").contents[0].text)
    saved = json.loads(read(alice, f"tideline://views/saved/{view['id']}").contents[0].text)
    views = json.loads(read(alice, "tideline://views").contents[0].text)

    assert [task["title"] for task in today["results"]] == ["Late"]
    assert [task["title"] for task in saved["results"]] == ["Late", "Someday"]
    assert [(v["id"], v["name"]) for v in views] == [(view["id"], "All")]
    assert json.loads(read(bob, "tideline://views/today").contents[0].text)["count"] == 0


#: list_tasks: the user (with the profile), COUNT(*), the page, the page's tags.
LIST_QUERIES = 4


@pytest.mark.parametrize("tasks", [2, 30])
def test_list_tasks_runs_a_fixed_number_of_queries(alice, call, django_assert_num_queries, tasks):
    for i in range(tasks):
        make_task(alice, title=f"Task {i}", tags=[f"tag{i % 3}"], due_date=timezone.now())

    with django_assert_num_queries(LIST_QUERIES):
        listed = ok(call(alice, "list_tasks", view="today"))

    assert listed["count"] == tasks


#: list_categories and list_tags: the user, COUNT(*), the page with its task counts.
LABEL_LIST_QUERIES = 3


@pytest.mark.parametrize("tool", ["list_categories", "list_tags"])
@pytest.mark.parametrize("labels", [1, 12])
def test_the_label_lists_run_a_fixed_number_of_queries(
    alice, call, django_assert_num_queries, tool, labels
):
    for i in range(labels):
        make_task(alice, title=f"Task {i}", category=make_category(alice, f"C{i}"), tags=[f"t{i}"])

    with django_assert_num_queries(LABEL_LIST_QUERIES):
        listed = ok(call(alice, tool))

    assert listed["count"] == labels
