"""The list endpoints run a fixed number of SQL queries, however many rows a page holds."""

import datetime as dt

import pytest
from django.db import connection

from tests.factories import make_category, make_task

#: The page's tags: one query for the whole page.
TAGS_QUERIES = 1
#: GET /api/tasks/: the token (joined to its user), COUNT(*), the page of tasks with their
#: tags.
TASK_LIST_QUERIES = 3 + TAGS_QUERIES
#: With a category filter (the id is checked against the user's categories), a date bound
#: (read in the user's profile time zone) and tag filters (``tags`` and ``tags_all`` names
#: resolved to the user's tag ids together): three more, still independent of the row count.
FILTERED_TASK_LIST_QUERIES = 6 + TAGS_QUERIES
#: GET /api/tasks/{id}/: the token, then the task with its tags: one query on PostgreSQL (the
#: names as an array), the row then its tags elsewhere.
TASK_DETAIL_QUERIES = {"postgresql": 2, "sqlite": 3}
#: GET /api/categories/ and /api/tags/: the token, COUNT(*), the page with its task counts.
OWNED_LIST_QUERIES = 3


@pytest.fixture
def tasks_with_relations(alice):
    """``tasks_with_relations(n)``: n tasks, each with a category and two tags."""

    def create(n: int):
        categories = [make_category(alice, f"Category {i}") for i in range(3)]
        for i in range(n):
            make_task(
                alice,
                title=f"Task {i}",
                category=categories[i % 3],
                tags=[f"tag{i % 5}", f"other{i % 7}"],
                due_date=dt.datetime(2026, 1, 1 + i % 28, 9, tzinfo=dt.UTC),
            )
        return categories

    return create


@pytest.mark.parametrize("n", [1, 50])
def test_the_task_list_runs_the_same_queries_for_1_and_50_tasks(
    api, tasks_with_relations, django_assert_num_queries, n
):
    tasks_with_relations(n)

    with django_assert_num_queries(TASK_LIST_QUERIES):
        response = api.get("/api/tasks/")

    assert response.status_code == 200
    assert len(response.json()["results"]) == n
    assert all(len(t["tags"]) == 2 for t in response.json()["results"])


def test_a_task_is_read_with_the_token_and_one_query(
    api, tasks_with_relations, django_assert_num_queries
):
    tasks_with_relations(1)
    task_id = api.get("/api/tasks/").json()["results"][0]["id"]

    with django_assert_num_queries(TASK_DETAIL_QUERIES[connection.vendor]):
        response = api.get(f"/api/tasks/{task_id}/")

    assert response.status_code == 200
    assert len(response.json()["tags"]) == 2


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, ["Task 0"]), (50, ["Task 0", "Task 15", "Task 30", "Task 45"])],
)
def test_a_filtered_and_sorted_task_list_runs_the_same_queries_for_1_and_50_tasks(
    api, tasks_with_relations, django_assert_num_queries, n, expected
):
    categories = tasks_with_relations(n)
    # Category 0 holds every third task and tag0 every fifth: the tasks i % 15 == 0 match.
    query = (
        f"category={categories[0].pk}&tags=tag0,tag1,tag2,tag3,tag4&tags_all=tag0"
        "&due_after=2025-01-01&priority=medium,high&search=task&ordering=-priority"
    )

    with django_assert_num_queries(FILTERED_TASK_LIST_QUERIES):
        response = api.get(f"/api/tasks/?{query}")

    assert response.status_code == 200
    assert response.json()["count"] == len(expected)
    assert sorted(t["title"] for t in response.json()["results"]) == sorted(expected)


@pytest.mark.parametrize("n", [1, 50])
@pytest.mark.parametrize("endpoint", ["categories", "tags"])
def test_category_and_tag_lists_run_the_same_queries_for_1_and_50_rows(
    api, alice, django_assert_num_queries, endpoint, n
):
    for i in range(n):
        make_task(alice, category=make_category(alice, f"Category {i}"), tags=[f"tag{i}"])

    with django_assert_num_queries(OWNED_LIST_QUERIES):
        response = api.get(f"/api/{endpoint}/")

    assert response.json()["count"] == n
    assert all(row["task_count"] == 1 for row in response.json()["results"])
