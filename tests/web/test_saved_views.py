"""Saved views: saving the list's filters, opening, renaming and deleting views, and the API."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.shortcuts import resolve_url
from django.test import Client

from tasks import services
from tasks.models import SavedView
from tasks.web.labels import filters_in_words
from tests.factories import make_category, make_task
from tests.web.html import cells, field_error, flash, parse, unlabelled_controls


def make_view(user, name="Urgent", **filters) -> SavedView:
    return services.saved_view_create(user=user, name=name, filters=filters)


def stored_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def alice_client(client, alice) -> Client:
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(client, bob) -> Client:
    client.force_login(bob)
    return client


# --- the filters in words -----------------------------------------------------------------


def test_a_views_filters_read_as_words_in_a_fixed_order():
    filters = {"tags": "work", "priority": "high,urgent", "view": "today"}

    assert filters_in_words(filters, {}) == "Today · priority high, urgent · tags work"


def test_a_views_category_reads_as_its_name_and_a_deleted_one_says_so():
    assert filters_in_words({"category": "7"}, {7: "Errands"}) == "category Errands"
    assert filters_in_words({"category": "8"}, {7: "Errands"}) == "a deleted category"


@pytest.mark.parametrize(
    ("filters", "words"),
    [
        ({}, "All tasks"),
        ({"overdue": "true", "has_due_date": "false"}, "overdue · without a due date"),
        (
            {"search": "tax", "ordering": "-due_date"},
            "matching “tax” · sorted by due date, descending",
        ),
        ({"sort_by": "title", "sort_order": "asc"}, "sorted by title"),
        ({"status": "completed", "due_after": "2026-01-01"}, "completed · due from 2026-01-01"),
    ],
)
def test_other_filters_read_as_words(filters, words):
    assert filters_in_words(filters, {}) == words


# --- the saved views page ---------------------------------------------------------------------


def test_the_saved_views_page_links_each_view_and_shows_its_filters_in_words(alice_client, alice):
    errands = make_category(alice, "Errands")
    view = make_view(
        alice, "Hot errands", view="today", priority="high,urgent", category=str(errands.pk)
    )

    response = alice_client.get("/views/")

    assert response.status_code == 200
    assert cells(response, f"view-{view.pk}")[:2] == [
        "★ Hot errands",
        "Today · category Errands · priority high, urgent",
    ]
    link = parse(response).get(f"view-{view.pk}").find_all("a")[0]
    assert link.attrs["href"] == f"/views/{view.pk}/"


def test_without_saved_views_the_page_says_how_to_save_one(alice_client, bob):
    make_view(bob, "Bob's view", view="today")

    response = alice_client.get("/views/")

    assert any(
        "empty-state" in (d.attrs.get("class") or "") and "Save view" in d.text
        for d in parse(response).find_all("div")
    )
    assert "Bob" not in parse(response).get("main").text


def test_every_control_on_the_saved_views_page_has_a_label(alice_client, alice):
    make_view(alice, "Urgent", priority="urgent")

    assert unlabelled_controls(alice_client.get("/views/")) == []


# --- opening a saved view -------------------------------------------------------------------


def test_opening_a_saved_view_shows_the_task_list_with_its_filters(alice_client, alice):
    view = make_view(alice, "Urgent work", priority="high,urgent", tags="work")

    make_task(alice, title="Fire", priority="urgent", tags=["work"])
    make_task(alice, title="Spark", priority="high", tags=["home"])
    make_task(alice, title="Smoke", priority="low", tags=["work"])

    response = alice_client.get(f"/views/{view.pk}/")

    assert response.status_code == 200
    assert [task.title for task in response.context["tasks"]] == ["Fire"]
    body = response.content.decode()
    assert "<h1>Urgent work" in body
    assert f'href="/views/{view.pk}/" aria-current="page"' in body


# --- saving the list's filters ----------------------------------------------------------------


def test_saving_the_lists_filters_creates_the_view_and_opens_it(alice_client, alice):
    response = alice_client.post(
        "/views/save/", {"name": " Urgent work ", "query": "view=today&priority=high,urgent&page=2"}
    )

    view = SavedView.objects.get(user=alice)
    assert (view.name, view.filters) == (
        "Urgent work",
        {"view": "today", "priority": "high,urgent"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/views/{view.pk}/"
    assert stored_messages(response) == ["Saved view “Urgent work”."]


def test_saving_repeated_parameters_joins_them_and_drops_the_saved_marker(alice_client, alice):
    alice_client.post(
        "/views/save/", {"name": "Mine", "query": "priority=high&priority=urgent&saved=12&tags="}
    )

    assert SavedView.objects.get(user=alice).filters == {"priority": "high,urgent"}


def test_saving_a_taken_name_goes_back_to_the_list_and_names_the_problem(alice_client, alice):
    make_view(alice, "Urgent", priority="urgent")

    response = alice_client.post("/views/save/", {"name": "URGENT", "query": "view=today"})

    assert response.status_code == 302
    assert response["Location"] == "/tasks/?view=today"
    assert stored_messages(response) == [
        "The view was not saved. Name: You already have a view with this name."
    ]
    assert SavedView.objects.filter(user=alice).count() == 1


def test_saving_an_unknown_filter_goes_back_and_names_the_filter(alice_client, alice):
    response = alice_client.post("/views/save/", {"name": "Odd", "query": "colour=blue"})

    assert response["Location"] == "/tasks/?colour=blue"
    assert stored_messages(response) == [
        "The view was not saved. Filters: 'colour' is not a task filter."
    ]
    assert not SavedView.objects.exists()


def test_saving_without_a_name_goes_back_and_asks_for_one(alice_client, alice):
    response = alice_client.post("/views/save/", {"name": "", "query": ""})

    assert response["Location"] == "/tasks/"
    assert stored_messages(response) == [
        "The view was not saved. Name: This field cannot be blank."
    ]


def test_saving_only_takes_a_form_post(alice_client):
    assert alice_client.get("/views/save/").status_code == 405


# --- renaming and deleting ------------------------------------------------------------------


def test_renaming_a_saved_view_keeps_its_filters(alice_client, alice):
    view = make_view(alice, "Urgent", priority="urgent")

    response = alice_client.post(f"/views/{view.pk}/edit/", {"name": "Fires"}, follow=True)

    assert response.redirect_chain == [("/views/", 302)]
    assert flash(response) == ["Renamed the view to “Fires”."]
    view.refresh_from_db()
    assert (view.name, view.filters) == ("Fires", {"priority": "urgent"})


def test_renaming_a_saved_view_to_a_taken_name_shows_the_error_in_its_row(alice_client, alice):
    make_view(alice, "Today", view="today")
    view = make_view(alice, "Urgent", priority="urgent")

    response = alice_client.post(f"/views/{view.pk}/edit/", {"name": "TODAY"})

    assert response.status_code == 400
    assert field_error(response, f"view-{view.pk}-name") == (
        "You already have a view with this name."
    )
    view.refresh_from_db()
    assert view.name == "Urgent"


def test_the_delete_page_says_the_tasks_stay(alice_client, alice):
    view = make_view(alice, "Urgent", priority="urgent")

    text = parse(alice_client.get(f"/views/{view.pk}/delete/")).get("main").text

    assert "Delete saved view “Urgent”?" in text
    assert "Its tasks stay" in text


def test_deleting_a_saved_view_keeps_the_tasks(alice_client, alice):
    view = make_view(alice, "Urgent", priority="urgent")
    task = make_task(alice, title="Fire", priority="urgent")

    response = alice_client.post(f"/views/{view.pk}/delete/", follow=True)

    assert response.redirect_chain == [("/views/", 302)]
    assert flash(response) == ["Deleted saved view “Urgent”. Its tasks stay."]
    assert not SavedView.objects.exists()
    task.refresh_from_db()
    assert task.title == "Fire"


# --- a view whose category is deleted ------------------------------------------------------


def test_deleting_a_category_leaves_its_saved_views_openable_with_their_other_filters(
    alice_client, alice
):
    errands = make_category(alice, "Errands")
    view = make_view(alice, "Hot errands", category=str(errands.pk), priority="urgent")
    make_task(alice, title="Post the parcel", category=errands, priority="urgent")
    make_task(alice, title="Water plants", priority="low")

    alice_client.post(f"/categories/{errands.pk}/delete/")
    response = alice_client.get(f"/views/{view.pk}/")

    assert response.status_code == 200
    assert [task.title for task in response.context["tasks"]] == ["Post the parcel"]
    view.refresh_from_db()
    assert view.filters == {"priority": "urgent"}
    row = cells(alice_client.get("/views/"), f"view-{view.pk}")
    assert row[1] == "priority urgent"


def test_deleting_a_category_leaves_views_of_other_categories_alone(alice, bob):
    errands, work = make_category(alice, "Errands"), make_category(alice, "Work")
    kept = make_view(alice, "Work", category=str(work.pk))
    bobs = make_view(bob, "Bob's", view="today")

    services.category_delete(category=errands)

    kept.refresh_from_db()
    bobs.refresh_from_db()
    assert (kept.filters, bobs.filters) == ({"category": str(work.pk)}, {"view": "today"})


def test_deleting_a_category_through_the_api_removes_it_from_saved_views(api, alice):
    errands = make_category(alice, "Errands")
    view = make_view(alice, "Errands today", category=str(errands.pk), view="today")

    assert api.delete(f"/api/categories/{errands.pk}/").status_code == 204

    body = api.get(f"/api/views/{view.pk}/").json()
    assert body["filters"] == {"view": "today"}
    assert api.get("/api/tasks/", body["filters"]).status_code == 200


# --- isolation, login, CSRF -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/views/{view}/", {}),
        ("get", "/views/{view}/delete/", {}),
        ("post", "/views/{view}/delete/", {}),
        ("post", "/views/{view}/edit/", {"name": "Mine"}),
    ],
)
def test_another_users_saved_view_is_a_404_and_stays_unchanged(
    bob_client, alice, method, url, data
):
    view = make_view(alice, "Urgent", priority="urgent")

    response = getattr(bob_client, method)(url.format(view=view.pk), data)

    assert response.status_code == 404
    assert SavedView.objects.get(pk=view.pk).name == "Urgent"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/views/"),
        ("get", "/views/{view}/"),
        ("post", "/views/save/"),
        ("post", "/views/{view}/edit/"),
        ("get", "/views/{view}/delete/"),
        ("post", "/views/{view}/delete/"),
    ],
)
def test_anonymous_visitors_are_sent_to_log_in(client, alice, method, url):
    view = make_view(alice, "Urgent", priority="urgent")

    response = getattr(client, method)(url.format(view=view.pk))

    assert response.status_code == 302
    assert response["Location"].startswith(resolve_url("login") + "?next=")
    assert SavedView.objects.filter(pk=view.pk).exists()


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/views/save/", {"name": "New", "query": "view=today"}),
        ("/views/{view}/edit/", {"name": "Renamed"}),
        ("/views/{view}/delete/", {}),
    ],
)
def test_a_post_without_the_csrf_token_is_refused(alice, url, data):
    view = make_view(alice, "Urgent", priority="urgent")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(url.format(view=view.pk), data)

    assert response.status_code == 403
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Urgent"]


# --- query counts ---------------------------------------------------------------------------

#: Session, user, profile, the views, their categories' names, the sidebar's four queries, and
#: the live-updates position.
SAVED_VIEWS_PAGE_QUERIES = 10


@pytest.mark.parametrize("n", [1, 30])
def test_the_saved_views_page_runs_the_same_queries_for_1_and_30_views(
    alice_client, alice, django_assert_num_queries, n
):
    for i in range(n):
        category = make_category(alice, f"Category {i}")
        make_view(alice, f"View {i}", category=str(category.pk), tags=f"tag{i}")

    with django_assert_num_queries(SAVED_VIEWS_PAGE_QUERIES):
        response = alice_client.get("/views/")

    assert response.status_code == 200
    rows = parse(response).find_all("tbody")[0].find_all("tr")
    assert len(rows) == n
    assert all("category Category" in row.text for row in rows)


# --- the API: /api/views/ -------------------------------------------------------------------


def test_creating_a_saved_view_through_the_api(api, alice):
    response = api.post(
        "/api/views/",
        {"name": "Urgent", "filters": {"priority": ["high", "urgent"], "overdue": True}},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["filters"]) == (
        "Urgent",
        {"priority": "high,urgent", "overdue": "true"},
    )
    assert body["url"] == f"/views/{body['id']}/"
    assert SavedView.objects.get(pk=body["id"]).user == alice


def test_listing_saved_views_through_the_api_shows_only_mine_by_name(api, alice, bob):
    make_view(alice, "b view", view="today")
    make_view(alice, "A view", view="all")
    make_view(bob, "Bob's", view="all")

    body = api.get("/api/views/").json()

    assert [row["name"] for row in body["results"]] == ["A view", "b view"]


def test_getting_renaming_and_replacing_a_saved_view_through_the_api(api, alice):
    view = make_view(alice, "Urgent", priority="urgent")

    assert api.get(f"/api/views/{view.pk}/").json()["filters"] == {"priority": "urgent"}
    renamed = api.patch(f"/api/views/{view.pk}/", {"name": "Fires"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json()["filters"] == {"priority": "urgent"}
    replaced = api.put(
        f"/api/views/{view.pk}/", {"name": "Today", "filters": {"view": "today"}}, format="json"
    )
    assert replaced.status_code == 200, replaced.json()
    view.refresh_from_db()
    assert (view.name, view.filters) == ("Today", {"view": "today"})


def test_deleting_a_saved_view_through_the_api(api, alice):
    view = make_view(alice, "Urgent", priority="urgent")

    assert api.delete(f"/api/views/{view.pk}/").status_code == 204
    assert not SavedView.objects.exists()


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"colour": "blue"}, "'colour' is not a task filter."),
        ({"priority": "sky-high"}, "priority:"),
    ],
)
def test_a_bad_filter_is_a_400_naming_filters(api, filters, message):
    response = api.post("/api/views/", {"name": "Odd", "filters": filters}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"filters"}
    assert any(message in error for error in response.json()["filters"])
    assert not SavedView.objects.exists()


def test_a_duplicate_name_in_another_case_is_a_400_on_name(api, alice):
    make_view(alice, "Urgent", priority="urgent")

    response = api.post("/api/views/", {"name": "URGENT", "filters": {}}, format="json")

    assert response.status_code == 400
    assert response.json() == {"name": ["You already have a view with this name."]}


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_another_users_saved_view_is_a_404_in_the_api(bob_api, alice, method):
    view = make_view(alice, "Urgent", priority="urgent")

    response = getattr(bob_api, method)(
        f"/api/views/{view.pk}/", {"name": "Mine", "filters": {}}, format="json"
    )

    assert response.status_code == 404
    assert SavedView.objects.get(pk=view.pk).name == "Urgent"
