"""Pagination of the task list: ``page`` and ``page_size`` (default 50, at most 200)."""

import pytest

from tasks.models import Task
from tests.factories import make_category, make_tag


@pytest.fixture
def sixty_tasks(alice):
    # Pagination only reads rows: create them in one statement rather than through the service.
    Task.objects.bulk_create(
        Task(user=alice, title=f"Task {n:02d}", priority=("low", "high")[n % 2]) for n in range(60)
    )


def test_the_default_page_size_is_50(api, sixty_tasks):
    body = api.get("/api/tasks/").json()

    assert body["count"] == 60
    assert len(body["results"]) == 50
    assert body["previous"] is None
    assert body["next"].endswith("/api/tasks/?page=2")


def test_the_second_page_holds_the_rest(api, sixty_tasks):
    body = api.get("/api/tasks/?page=2").json()

    assert body["count"] == 60
    assert len(body["results"]) == 10
    assert body["next"] is None
    assert body["previous"].endswith("/api/tasks/")


def test_pages_together_hold_every_task_once(api, sixty_tasks):
    seen = []
    url = "/api/tasks/?page_size=7&ordering=priority"
    while url:
        body = api.get(url).json()
        seen += [t["id"] for t in body["results"]]
        url = body["next"]

    assert sorted(seen) == sorted(Task.objects.values_list("id", flat=True))
    assert len(seen) == len(set(seen)) == 60


def test_page_size_chooses_the_number_of_rows(api, sixty_tasks):
    body = api.get("/api/tasks/?page_size=25&page=3").json()

    assert len(body["results"]) == 10
    assert body["previous"].endswith("page=2&page_size=25")


def test_next_and_previous_keep_the_filters_and_sort(api, sixty_tasks):
    body = api.get("/api/tasks/?search=task&ordering=title&page_size=10&page=2").json()

    assert "search=task" in body["next"]
    assert "ordering=title" in body["next"]
    assert "ordering=title" in body["previous"]
    assert body["results"][0]["title"] == "Task 10"


def test_page_size_200_is_allowed(api, sixty_tasks):
    response = api.get("/api/tasks/?page_size=200")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 60


@pytest.mark.parametrize("page_size", ["201", "1000", "0", "-1", "abc", "1.5"])
def test_a_page_size_outside_1_to_200_is_400_naming_page_size(api, alice, page_size):
    response = api.get(f"/api/tasks/?page_size={page_size}")

    assert response.status_code == 400
    assert "page_size" in response.json()


@pytest.mark.parametrize("page", ["99", "0", "abc"])
def test_a_page_that_does_not_exist_is_404(api, sixty_tasks, page):
    assert api.get(f"/api/tasks/?page={page}").status_code == 404


def test_an_empty_list_has_one_empty_page(api, alice):
    assert api.get("/api/tasks/").json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


@pytest.mark.parametrize("endpoint", ["categories", "tags"])
def test_categories_and_tags_are_paginated_the_same_way(api, alice, endpoint):
    for n in range(3):
        (make_category if endpoint == "categories" else make_tag)(alice, f"name {n}")

    body = api.get(f"/api/{endpoint}/?page_size=2").json()

    assert body["count"] == 3
    assert [r["name"] for r in body["results"]] == ["name 0", "name 1"]
    assert api.get(f"/api/{endpoint}/?page_size=201").status_code == 400
