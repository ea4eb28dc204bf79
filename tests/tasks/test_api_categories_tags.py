"""Categories and tags: full CRUD through the REST API, each with its task count."""

import pytest

from tasks.models import Category, Tag, Task
from tests.factories import make_category, make_tag, make_task

# --- categories --------------------------------------------------------------------------


def test_creating_a_category_answers_201_with_a_zero_task_count(api, alice):
    response = api.post("/api/categories/", {"name": "Work", "color": "#2563eb"})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {"id", "name", "color", "task_count", "created_at"}
    assert (body["name"], body["color"], body["task_count"]) == ("Work", "#2563eb", 0)
    assert Category.objects.get(pk=body["id"]).user == alice


def test_a_read_only_task_count_sent_in_a_write_is_ignored(api):
    response = api.post("/api/categories/", {"name": "Work", "task_count": 99})

    assert response.status_code == 201
    assert response.json()["task_count"] == 0


def test_creating_a_category_without_a_colour_uses_the_default(api):
    assert api.post("/api/categories/", {"name": "Work"}).json()["color"] == "#3b82f6"


def test_creating_a_category_trims_the_name(api):
    assert api.post("/api/categories/", {"name": "  Work "}).json()["name"] == "Work"


def test_listing_categories_shows_each_task_count(api, alice):
    work = make_category(alice, "Work")
    make_category(alice, "Home")
    make_task(alice, category=work)
    make_task(alice, category=work)

    body = api.get("/api/categories/").json()

    assert [(c["name"], c["task_count"]) for c in body["results"]] == [("Home", 0), ("Work", 2)]


def test_categories_are_listed_by_name_case_insensitively(api, alice):
    for name in ("banana", "Apple", "cherry"):
        make_category(alice, name)

    names = [c["name"] for c in api.get("/api/categories/").json()["results"]]

    assert names == ["Apple", "banana", "cherry"]


def test_getting_a_category(api, alice):
    work = make_category(alice, "Work")
    make_task(alice, category=work)

    body = api.get(f"/api/categories/{work.pk}/").json()

    assert (body["id"], body["name"], body["task_count"]) == (work.pk, "Work", 1)


def test_put_replaces_a_category(api, alice):
    work = make_category(alice, "Work")
    make_task(alice, category=work)

    response = api.put(f"/api/categories/{work.pk}/", {"name": "Job", "color": "#000000"})

    assert response.status_code == 200, response.json()
    assert response.json() | {"created_at": None} == {
        "id": work.pk,
        "name": "Job",
        "color": "#000000",
        "task_count": 1,
        "created_at": None,
    }


def test_patch_changes_a_categorys_colour(api, alice):
    work = make_category(alice, "Work")

    body = api.patch(f"/api/categories/{work.pk}/", {"color": "#ABCDEF"}).json()

    assert (body["name"], body["color"]) == ("Work", "#ABCDEF")


def test_deleting_a_category_keeps_its_tasks(api, alice):
    work = make_category(alice, "Work")
    task = make_task(alice, category=work)

    response = api.delete(f"/api/categories/{work.pk}/")

    assert response.status_code == 204
    assert not Category.objects.filter(pk=work.pk).exists()
    assert api.get(f"/api/tasks/{task.pk}/").json()["category"] is None


# --- tags --------------------------------------------------------------------------------


def test_creating_a_tag_answers_201(api, alice):
    response = api.post("/api/tags/", {"name": "home"})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {"id", "name", "task_count", "created_at"}
    assert (body["name"], body["task_count"]) == ("home", 0)
    assert Tag.objects.get(pk=body["id"]).user == alice


def test_listing_tags_shows_each_task_count(api, alice):
    make_task(alice, tags=["home", "chores"])
    make_task(alice, tags=["home"])
    make_tag(alice, "unused")

    body = api.get("/api/tags/").json()

    assert [(t["name"], t["task_count"]) for t in body["results"]] == [
        ("chores", 1),
        ("home", 2),
        ("unused", 0),
    ]


def test_getting_a_tag(api, alice):
    make_task(alice, tags=["home"])
    home = Tag.objects.get(user=alice, name="home")

    body = api.get(f"/api/tags/{home.pk}/").json()

    assert (body["id"], body["name"], body["task_count"]) == (home.pk, "home", 1)


@pytest.mark.parametrize("method", ["put", "patch"])
def test_renaming_a_tag_renames_it_on_its_tasks(api, alice, method):
    task = make_task(alice, tags=["home"])
    home = Tag.objects.get(user=alice, name="home")

    response = getattr(api, method)(f"/api/tags/{home.pk}/", {"name": "House"})

    assert response.status_code == 200, response.json()
    assert (response.json()["name"], response.json()["task_count"]) == ("House", 1)
    assert api.get(f"/api/tasks/{task.pk}/").json()["tags"] == ["House"]


def test_deleting_a_tag_removes_it_from_its_tasks(api, alice):
    task = make_task(alice, tags=["home", "work"])
    home = Tag.objects.get(user=alice, name="home")

    response = api.delete(f"/api/tags/{home.pk}/")

    assert response.status_code == 204
    assert api.get(f"/api/tasks/{task.pk}/").json()["tags"] == ["work"]
    assert Task.objects.filter(pk=task.pk).exists()


def test_a_tag_created_on_a_task_is_listed(api):
    api.post("/api/tasks/", {"title": "Sweep", "tags": ["Chores"]})

    assert [t["name"] for t in api.get("/api/tags/").json()["results"]] == ["Chores"]


def test_two_users_may_have_tags_with_the_same_name(api, bob_api):
    assert api.post("/api/tags/", {"name": "home"}).status_code == 201
    assert bob_api.post("/api/tags/", {"name": "Home"}).status_code == 201


def test_a_tag_name_with_a_comma_is_a_400_on_name(api, alice):
    response = api.post("/api/tags/", {"name": "a,b"})

    assert response.status_code == 400
    assert response.json() == {"name": ["Tag names cannot contain commas."]}
    assert not Tag.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch"])
def test_renaming_a_tag_to_a_name_with_a_comma_is_a_400_on_name(api, alice, method):
    home = make_tag(alice, "home")

    response = getattr(api, method)(f"/api/tags/{home.pk}/", {"name": "home,work"})

    assert response.status_code == 400
    assert response.json() == {"name": ["Tag names cannot contain commas."]}
    assert Tag.objects.get(pk=home.pk).name == "home"


def test_a_task_tag_with_a_comma_is_a_400_on_tags(api, alice):
    response = api.post("/api/tasks/", {"title": "Pay", "tags": ["a,b"]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"tags": ["Tag names cannot contain commas."]}
    assert not Task.objects.exists()
    assert not Tag.objects.exists()
