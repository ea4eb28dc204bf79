"""Two users: alice never sees or changes bob's tasks, categories or tags."""

import datetime as dt

import pytest

from tasks.models import Category, Tag, Task
from tests.factories import make_category, make_tag, make_task

UTC = dt.UTC


@pytest.fixture
def bobs_task(bob):
    return make_task(
        bob,
        title="Bob's secret",
        description="private",
        category=make_category(bob, "Bob's work"),
        tags=["bob-only"],
        due_date=dt.datetime(2020, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
def bobs_category(bob):
    return make_category(bob, "Bob's home")


@pytest.fixture
def bobs_tag(bob):
    return make_tag(bob, "bob-tag")


# --- another user's id is a 404 ------------------------------------------------------------

TASK_REQUESTS = [
    ("get", "", None),
    ("put", "", {"title": "Hijacked"}),
    ("patch", "", {"title": "Hijacked"}),
    ("delete", "", None),
    ("post", "complete/", None),
    ("post", "reopen/", None),
]


@pytest.mark.parametrize(("method", "suffix", "payload"), TASK_REQUESTS)
def test_bobs_task_is_404_for_alice(api, alice, bobs_task, method, suffix, payload):
    own = make_task(alice, title="Alice's own")
    request = getattr(api, method)

    response = request(f"/api/tasks/{bobs_task.pk}/{suffix}", payload)

    assert response.status_code == 404
    stored = Task.objects.get(pk=bobs_task.pk)
    assert (stored.title, stored.completed) == ("Bob's secret", False)
    assert request(f"/api/tasks/{own.pk}/{suffix}", payload).status_code in (200, 204)


def test_bobs_completed_task_cannot_be_reopened_by_alice(api, alice, bob):
    task = make_task(bob, completed=True)
    own = make_task(alice, completed=True)

    assert api.post(f"/api/tasks/{task.pk}/reopen/").status_code == 404
    assert Task.objects.get(pk=task.pk).completed is True
    assert api.post(f"/api/tasks/{own.pk}/reopen/").status_code == 200
    assert Task.objects.get(pk=own.pk).completed is False


OWNED_REQUESTS = [
    ("get", None),
    ("put", {"name": "Hijacked"}),
    ("patch", {"name": "Hijacked"}),
    ("delete", None),
]


@pytest.mark.parametrize(("method", "payload"), OWNED_REQUESTS)
def test_bobs_category_is_404_for_alice(api, alice, bobs_category, method, payload):
    own = make_category(alice, "Alice's home")
    request = getattr(api, method)

    response = request(f"/api/categories/{bobs_category.pk}/", payload)

    assert response.status_code == 404
    assert Category.objects.get(pk=bobs_category.pk).name == "Bob's home"
    assert request(f"/api/categories/{own.pk}/", payload).status_code in (200, 204)


@pytest.mark.parametrize(("method", "payload"), OWNED_REQUESTS)
def test_bobs_tag_is_404_for_alice(api, alice, bobs_tag, method, payload):
    own = make_tag(alice, "alice-tag")
    request = getattr(api, method)

    response = request(f"/api/tags/{bobs_tag.pk}/", payload)

    assert response.status_code == 404
    assert Tag.objects.get(pk=bobs_tag.pk).name == "bob-tag"
    assert request(f"/api/tags/{own.pk}/", payload).status_code in (200, 204)


# --- lists never show another user's rows ----------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "search=secret",
        "tags=bob-only",
        "overdue=true",
        "status=pending",
        "page_size=200",
        "ordering=-priority",
    ],
)
def test_alices_task_list_never_shows_bobs_tasks(api, alice, bobs_task, query):
    # Alice's twin of Bob's task: every query that would find his finds hers.
    make_task(
        alice,
        title="Alice's secret",
        description="private",
        tags=["bob-only"],
        due_date=dt.datetime(2020, 1, 1, tzinfo=UTC),
    )

    titles = [t["title"] for t in api.get(f"/api/tasks/?{query}").json()["results"]]

    assert titles == ["Alice's secret"]


def test_alices_category_list_never_shows_bobs(api, alice, bobs_category):
    make_category(alice, "Mine")

    assert [c["name"] for c in api.get("/api/categories/").json()["results"]] == ["Mine"]


def test_alices_tag_list_never_shows_bobs(api, alice, bobs_tag):
    make_tag(alice, "mine")

    assert [t["name"] for t in api.get("/api/tags/").json()["results"]] == ["mine"]


def test_category_task_count_counts_only_the_owners_tasks(api, bob_api, alice, bob):
    work = make_category(alice, "Work")
    make_task(alice, category=work)
    bobs_work = make_category(bob, "Work")
    make_task(bob, category=bobs_work)
    make_task(bob, category=bobs_work)

    assert api.get(f"/api/categories/{work.pk}/").json()["task_count"] == 1
    bobs_list = bob_api.get("/api/categories/").json()["results"]
    assert [(c["id"], c["task_count"]) for c in bobs_list] == [(bobs_work.pk, 2)]


def test_each_user_sees_only_their_own_tasks(api, bob_api, alice, bob):
    make_task(alice, title="A")
    make_task(bob, title="B")

    assert [t["title"] for t in api.get("/api/tasks/").json()["results"]] == ["A"]
    assert [t["title"] for t in bob_api.get("/api/tasks/").json()["results"]] == ["B"]


# --- referencing another user's rows ----------------------------------------------------------


def test_creating_a_task_in_bobs_category_is_400_naming_category(api, alice, bobs_category):
    own = make_category(alice, "Alice's home")

    response = api.post("/api/tasks/", {"title": "Sneaky", "category": bobs_category.pk})

    assert response.status_code == 400
    assert "category" in response.json()
    assert not Task.objects.filter(title="Sneaky").exists()
    assert api.post("/api/tasks/", {"title": "Mine", "category": own.pk}).status_code == 201


@pytest.mark.parametrize("method", ["put", "patch"])
def test_moving_a_task_into_bobs_category_is_400_naming_category(api, alice, bobs_category, method):
    task = make_task(alice)
    own = make_category(alice, "Alice's home")

    def move(category: Category):
        return getattr(api, method)(
            f"/api/tasks/{task.pk}/", {"title": "Sneaky", "category": category.pk}
        )

    response = move(bobs_category)

    assert response.status_code == 400
    assert "category" in response.json()
    assert Task.objects.get(pk=task.pk).category is None
    assert move(own).status_code == 200
    assert Task.objects.get(pk=task.pk).category == own


def test_filtering_by_bobs_category_is_400_naming_category(api, alice, bobs_category):
    own = make_category(alice, "Alice's home")
    make_task(alice, title="At home", category=own)

    response = api.get(f"/api/tasks/?category={bobs_category.pk}")

    assert response.status_code == 400
    assert "category" in response.json()
    own_list = api.get(f"/api/tasks/?category={own.pk}").json()["results"]
    assert [t["title"] for t in own_list] == ["At home"]


def test_tagging_a_task_with_a_name_bob_uses_creates_alices_own_tag(api, alice, bob, bobs_tag):
    body = api.post("/api/tasks/", {"title": "Mine", "tags": ["BOB-TAG"]}).json()

    assert body["tags"] == ["BOB-TAG"]
    assert Tag.objects.get(user=alice).name == "BOB-TAG"
    assert Tag.objects.get(user=bob).name == "bob-tag"
    assert bobs_tag.tasks.count() == 0


def test_filtering_by_a_tag_name_bob_uses_finds_only_alices_tasks(api, alice, bobs_task):
    make_task(alice, title="Alice tagged", tags=["bob-only"])

    titles = [t["title"] for t in api.get("/api/tasks/?tags_all=bob-only").json()["results"]]

    assert titles == ["Alice tagged"]


def test_a_category_name_bob_uses_is_free_for_alice(api, bobs_category):
    assert api.post("/api/categories/", {"name": "BOB'S HOME"}).status_code == 201
