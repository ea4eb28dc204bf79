"""A tag filter's count is read off the task-tag links alone, and is the number of tasks listed.

That shortcut is sound only while a task carries nothing but its owner's tags; the last tests
hold every write path to that.
"""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from events.relay import relay_pending
from tasks.models import Task
from tests.factories import make_task


@pytest.fixture
def tagged(alice, bob):
    """Alice: 3 tasks tagged work, 2 work+home, 1 home, 2 untagged. Bob has the same names."""
    for i in range(3):
        make_task(alice, title=f"work {i}", tags=["work"])
    for i in range(2):
        make_task(alice, title=f"both {i}", tags=["Work", "home"])
    make_task(alice, title="home", tags=["home"])
    for i in range(2):
        make_task(alice, title=f"plain {i}")
    for i in range(4):
        make_task(bob, title=f"bob {i}", tags=["work", "home"])


def all_titles(api, query: str) -> tuple[int, list[str]]:
    """The count the first page announces, and the titles of every page (2 a page)."""
    response = api.get(f"/api/tasks/?{query}&page_size=2")
    assert response.status_code == 200, response.content
    count, titles = response.json()["count"], []
    while True:
        titles += [task["title"] for task in response.json()["results"]]
        if not response.json()["next"]:
            return count, sorted(titles)
        response = api.get(response.json()["next"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tags=work", ["both 0", "both 1", "work 0", "work 1", "work 2"]),
        ("tags=WORK&ordering=-priority", ["both 0", "both 1", "work 0", "work 1", "work 2"]),
        ("tags=work,home", ["both 0", "both 1", "home", "work 0", "work 1", "work 2"]),
        ("tags_all=work,home&sort_by=title", ["both 0", "both 1"]),
        ("tags_all=home", ["both 0", "both 1", "home"]),
        ("tags=nosuch", []),
        ("tags_all=work,nosuch", []),
        # No tag named: no filter.
        (
            "tags=,",
            ["both 0", "both 1", "home", "plain 0", "plain 1", "work 0", "work 1", "work 2"],
        ),
    ],
)
def test_a_tag_filter_counts_exactly_the_tasks_it_lists(api, tagged, query, expected):
    count, titles = all_titles(api, query)

    assert titles == sorted(expected)
    assert count == len(expected)


def test_the_count_of_a_tag_filter_never_reads_the_tasks_table(api, tagged):
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/tasks/?tags=work")

    assert response.json()["count"] == 5
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1
    assert "task_tags" in counts[0]
    assert "tasks_task" not in counts[0]


def test_with_another_filter_the_count_reads_the_tasks(api, tagged):
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/tasks/?tags=work&status=pending")

    assert response.json()["count"] == 5
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and "tasks_task" in counts[0]


def links_to_a_stranger_tag() -> int:
    return Task.tags.through.objects.exclude(tag__user=F("task__user")).count()


def test_every_write_path_links_only_the_owners_tags(api, bob_api, alice, bob, settings):
    """Bob's tags share alice's names; whatever alice does, her tasks get her own tags."""
    settings.DAPR_ENABLED = False  # the recurrence consumer in process, run by relay_pending
    settings.CELERY_BROKER_URL = ""
    bob_api.post("/api/tasks/", {"title": "b", "tags": ["work", "home"]}, format="json")
    created = api.post(
        "/api/tasks/",
        {
            "title": "a",
            "tags": ["Work"],
            "recurrence_type": "daily",
            "due_date": "2030-01-01T09:00:00Z",
        },
        format="json",
    ).json()
    api.patch(f"/api/tasks/{created['id']}/", {"tags": ["home", "work"]}, format="json")
    api.post("/api/tasks/quick-add/", {"text": "Call mum tomorrow @home @new"}, format="json")
    api.post(f"/api/tasks/{created['id']}/complete/")
    relay_pending()  # the recurrence consumer spawns the next instance, its tags copied

    assert Task.objects.filter(user=alice).count() == 3
    assert Task.tags.through.objects.filter(task__user=alice).count() == 2 + 2 + 2
    assert links_to_a_stranger_tag() == 0
