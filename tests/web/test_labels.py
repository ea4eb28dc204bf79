"""The categories and tags pages: list with counts, add, rename, recolour, delete, errors."""

from __future__ import annotations

import pytest
from django.shortcuts import resolve_url
from django.test import Client

from tasks.models import Category, Tag, Task
from tests.factories import make_category, make_tag, make_task
from tests.web.html import cells, field_error, flash, parse, unlabelled_controls

# --- reading pages ------------------------------------------------------------------------


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def alice_client(client, alice) -> Client:
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(client, bob) -> Client:
    client.force_login(bob)
    return client


# --- categories: the list -----------------------------------------------------------------


def test_the_categories_page_shows_each_category_with_its_pending_and_total_counts(
    alice_client, alice
):
    work = make_category(alice, "Work", color="#ff0000")
    make_category(alice, "Home")
    make_task(alice, title="Report", category=work)
    make_task(alice, title="Invoice", category=work, completed=True)

    response = alice_client.get("/categories/")

    assert response.status_code == 200
    assert cells(response, f"category-{work.pk}")[:3] == ["Work", "1", "2"]
    link = parse(response).get(f"category-{work.pk}").find_all("a")[0]
    assert link.attrs["href"] == f"/tasks/?category={work.pk}"
    assert link.find_all("span")[0].attrs["style"] == "--dot: #ff0000"


def test_the_categories_page_lists_names_alphabetically_ignoring_case(alice_client, alice):
    for name in ("banana", "Apple", "cherry"):
        make_category(alice, name)

    rows = parse(alice_client.get("/categories/")).find_all("tbody")[0].find_all("tr")

    assert [row.find_all("th")[0].text for row in rows] == ["Apple", "banana", "cherry"]


def test_without_categories_the_page_says_how_to_add_one(alice_client):
    response = alice_client.get("/categories/")

    empty = parse(response).find_all("div")
    assert any(
        "empty-state" in (d.attrs.get("class") or "") and "No categories yet" in d.text
        for d in empty
    )


def test_every_control_on_the_categories_page_has_a_label(alice_client, alice):
    make_category(alice, "Work")

    assert unlabelled_controls(alice_client.get("/categories/")) == []


def test_another_users_categories_are_not_listed(alice_client, alice, bob):
    make_category(bob, "Surprise party")
    own = make_category(alice, "Birthday party")

    response = alice_client.get("/categories/")

    assert cells(response, f"category-{own.pk}")[0] == "Birthday party"
    assert "Surprise party" not in response.content.decode()


# --- categories: add, rename, recolour ------------------------------------------------------


def test_adding_a_category_saves_it_and_says_so(alice_client, alice):
    response = alice_client.post(
        "/categories/", {"name": "  Errands ", "color": "#10b981"}, follow=True
    )

    assert response.redirect_chain == [("/categories/", 302)]
    assert flash(response) == ["Added category “Errands”."]
    category = Category.objects.get(user=alice)
    assert (category.name, category.color) == ("Errands", "#10b981")


def test_adding_a_category_whose_name_exists_in_another_case_shows_the_error_beside_the_name(
    alice_client, alice
):
    make_category(alice, "Work")

    response = alice_client.post("/categories/", {"name": "WORK", "color": "#10b981"})

    assert response.status_code == 400
    assert field_error(response, "new-category-name") == (
        "You already have a category with this name."
    )
    assert parse(response).get("new-category-name").attrs["value"] == "WORK"
    assert Category.objects.filter(user=alice).count() == 1


def test_adding_a_category_with_a_bad_colour_shows_the_error_beside_the_colour(alice_client):
    response = alice_client.post("/categories/", {"name": "Work", "color": "red"})

    assert response.status_code == 400
    assert field_error(response, "new-category-color") == (
        "Enter a colour as #rrggbb, e.g. #3b82f6."
    )
    assert not Category.objects.exists()


def test_adding_a_category_without_a_name_shows_the_error_beside_the_name(alice_client):
    response = alice_client.post("/categories/", {"name": "  ", "color": "#10b981"})

    assert response.status_code == 400
    assert field_error(response, "new-category-name") == "This field is required."


def test_renaming_and_recolouring_a_category(alice_client, alice):
    work = make_category(alice, "Work", color="#000000")

    response = alice_client.post(
        f"/categories/{work.pk}/edit/", {"name": "Job", "color": "#ffffff"}, follow=True
    )

    assert response.redirect_chain == [("/categories/", 302)]
    assert flash(response) == ["Saved category “Job”."]
    work.refresh_from_db()
    assert (work.name, work.color) == ("Job", "#ffffff")
    assert cells(response, f"category-{work.pk}")[0] == "Job"


def test_renaming_a_category_to_a_taken_name_shows_the_error_in_its_row(alice_client, alice):
    make_category(alice, "Home")
    work = make_category(alice, "Work")

    response = alice_client.post(
        f"/categories/{work.pk}/edit/", {"name": "home", "color": "#3b82f6"}
    )

    assert response.status_code == 400
    assert field_error(response, f"category-{work.pk}-name") == (
        "You already have a category with this name."
    )
    row = parse(response).get(f"category-{work.pk}")
    assert "open" in row.find_all("details")[0].attrs  # the form stays open on the error
    assert row.find_all("th")[0].text == "Work"
    work.refresh_from_db()
    assert work.name == "Work"


def test_recolouring_a_category_with_a_bad_colour_shows_the_error_in_its_row(alice_client, alice):
    work = make_category(alice, "Work", color="#000000")

    response = alice_client.post(f"/categories/{work.pk}/edit/", {"name": "Work", "color": "#12"})

    assert response.status_code == 400
    assert field_error(response, f"category-{work.pk}-color") == (
        "Enter a colour as #rrggbb, e.g. #3b82f6."
    )
    work.refresh_from_db()
    assert work.color == "#000000"


def test_the_edit_address_only_takes_a_form_post(alice_client, alice):
    work = make_category(alice, "Work")

    assert alice_client.get(f"/categories/{work.pk}/edit/").status_code == 405


# --- categories: delete ---------------------------------------------------------------------


def test_the_delete_page_says_how_many_tasks_keep_existing_without_the_category(
    alice_client, alice
):
    work = make_category(alice, "Work")
    for title in ("One", "Two", "Three"):
        make_task(alice, title=title, category=work)

    response = alice_client.get(f"/categories/{work.pk}/delete/")

    assert response.status_code == 200
    text = parse(response).get("main").text
    assert "Delete category “Work”?" in text
    assert "Its 3 tasks keep existing, without a category." in text
    cancel = [a for a in parse(response).get("main").find_all("a") if a.text == "Cancel"]
    assert cancel[0].attrs["href"] == "/categories/"
    assert Category.objects.filter(pk=work.pk).exists()


def test_deleting_a_category_keeps_its_tasks_without_a_category(alice_client, alice):
    work = make_category(alice, "Work")
    task = make_task(alice, title="Report", category=work)

    response = alice_client.post(f"/categories/{work.pk}/delete/", follow=True)

    assert response.redirect_chain == [("/categories/", 302)]
    assert flash(response) == [
        "Deleted category “Work”. Its 1 task keeps existing, without a category."
    ]
    assert not Category.objects.filter(pk=work.pk).exists()
    task.refresh_from_db()
    assert task.category is None


# --- tags ---------------------------------------------------------------------------------


def test_the_tags_page_shows_each_tag_with_its_pending_and_total_counts(alice_client, alice):
    make_task(alice, title="Call", tags=["errands", "phone"])
    make_task(alice, title="Post", tags=["errands"], completed=True)
    errands = Tag.objects.get(user=alice, name="errands")

    response = alice_client.get("/tags/")

    assert response.status_code == 200
    assert cells(response, f"tag-{errands.pk}")[:3] == ["@errands", "1", "2"]
    link = parse(response).get(f"tag-{errands.pk}").find_all("a")[0]
    assert link.attrs["href"] == "/tasks/?tags=errands"


def test_without_tags_the_page_says_how_to_add_one(alice_client):
    response = alice_client.get("/tags/")

    assert any(
        "empty-state" in (d.attrs.get("class") or "") and "No tags yet" in d.text
        for d in parse(response).find_all("div")
    )


def test_every_control_on_the_tags_page_has_a_label(alice_client, alice):
    make_tag(alice, "home")

    assert unlabelled_controls(alice_client.get("/tags/")) == []


def test_adding_a_tag_saves_it_and_says_so(alice_client, alice):
    response = alice_client.post("/tags/", {"name": "garden"}, follow=True)

    assert response.redirect_chain == [("/tags/", 302)]
    assert flash(response) == ["Added tag “garden”."]
    assert list(Tag.objects.filter(user=alice).values_list("name", flat=True)) == ["garden"]


def test_adding_a_tag_whose_name_exists_in_another_case_shows_the_error_beside_the_name(
    alice_client, alice
):
    make_tag(alice, "home")

    response = alice_client.post("/tags/", {"name": "Home"})

    assert response.status_code == 400
    assert field_error(response, "new-tag-name") == "You already have a tag with this name."
    assert Tag.objects.filter(user=alice).count() == 1


def test_a_tag_name_with_a_comma_is_refused_beside_the_name_in_the_apis_words(
    alice_client, alice, api
):
    api_message = api.post("/api/tags/", {"name": "a,b"}).json()["name"]

    response = alice_client.post("/tags/", {"name": "a,b"})

    assert response.status_code == 400
    assert [field_error(response, "new-tag-name")] == api_message
    assert api_message == ["Tag names cannot contain commas."]
    assert parse(response).get("new-tag-name").attrs["value"] == "a,b"
    assert not Tag.objects.filter(user=alice).exists()


def test_renaming_a_tag_to_a_name_with_a_comma_shows_the_error_in_its_row(alice_client, alice):
    home = make_tag(alice, "home")

    response = alice_client.post(f"/tags/{home.pk}/edit/", {"name": "home, work"})

    assert response.status_code == 400
    assert field_error(response, f"tag-{home.pk}-name") == "Tag names cannot contain commas."
    assert "open" in parse(response).get(f"tag-{home.pk}").find_all("details")[0].attrs
    home.refresh_from_db()
    assert home.name == "home"


def test_renaming_a_tag(alice_client, alice):
    task = make_task(alice, tags=["hom"])
    tag = Tag.objects.get(user=alice)

    response = alice_client.post(f"/tags/{tag.pk}/edit/", {"name": "home"}, follow=True)

    assert response.redirect_chain == [("/tags/", 302)]
    assert flash(response) == ["Renamed the tag to “home”."]
    assert Task.objects.get(pk=task.pk).tag_names() == ["home"]


def test_renaming_a_tag_to_a_taken_name_shows_the_error_in_its_row(alice_client, alice):
    make_tag(alice, "home")
    work = make_tag(alice, "work")

    response = alice_client.post(f"/tags/{work.pk}/edit/", {"name": "HOME"})

    assert response.status_code == 400
    assert field_error(response, f"tag-{work.pk}-name") == "You already have a tag with this name."
    work.refresh_from_db()
    assert work.name == "work"


def test_the_tag_delete_page_says_how_many_tasks_keep_existing(alice_client, alice):
    make_task(alice, title="A", tags=["home"])
    make_task(alice, title="B", tags=["home"])
    home = Tag.objects.get(user=alice)

    text = parse(alice_client.get(f"/tags/{home.pk}/delete/")).get("main").text

    assert "Delete tag “home”?" in text
    assert "Its 2 tasks keep existing, without this tag." in text


def test_deleting_a_tag_keeps_its_tasks_without_the_tag(alice_client, alice):
    task = make_task(alice, title="Call", tags=["home", "phone"])
    home = Tag.objects.get(user=alice, name="home")

    response = alice_client.post(f"/tags/{home.pk}/delete/", follow=True)

    assert response.redirect_chain == [("/tags/", 302)]
    assert flash(response) == ["Deleted tag “home”. Its 1 task keeps existing, without this tag."]
    assert not Tag.objects.filter(pk=home.pk).exists()
    assert Task.objects.get(pk=task.pk).tag_names() == ["phone"]


def test_deleting_a_tag_without_tasks_says_none_used_it(alice_client, alice):
    home = make_tag(alice, "home")

    response = alice_client.post(f"/tags/{home.pk}/delete/", follow=True)

    assert flash(response) == ["Deleted tag “home”. No tasks use it."]


# --- isolation, login, CSRF -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/categories/{category}/delete/", {}),
        ("post", "/categories/{category}/delete/", {}),
        ("post", "/categories/{category}/edit/", {"name": "Mine", "color": "#000000"}),
        ("get", "/tags/{tag}/delete/", {}),
        ("post", "/tags/{tag}/delete/", {}),
        ("post", "/tags/{tag}/edit/", {"name": "mine"}),
    ],
)
def test_another_users_category_or_tag_is_a_404_and_stays_unchanged(
    bob_client, alice, method, url, data
):
    category = make_category(alice, "Work")
    tag = make_tag(alice, "home")

    response = getattr(bob_client, method)(url.format(category=category.pk, tag=tag.pk), data)

    assert response.status_code == 404
    assert Category.objects.get(pk=category.pk).name == "Work"
    assert Tag.objects.get(pk=tag.pk).name == "home"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/categories/"),
        ("post", "/categories/"),
        ("post", "/categories/{category}/edit/"),
        ("get", "/categories/{category}/delete/"),
        ("get", "/tags/"),
        ("post", "/tags/{tag}/edit/"),
        ("get", "/tags/{tag}/delete/"),
    ],
)
def test_anonymous_visitors_are_sent_to_log_in(client, alice, method, url):
    category = make_category(alice, "Work")
    tag = make_tag(alice, "home")

    response = getattr(client, method)(url.format(category=category.pk, tag=tag.pk))

    assert response.status_code == 302
    assert response["Location"].startswith(resolve_url("login") + "?next=")
    assert Category.objects.filter(pk=category.pk).exists()


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/categories/", {"name": "New", "color": "#000000"}),
        ("/categories/{category}/edit/", {"name": "Renamed", "color": "#000000"}),
        ("/categories/{category}/delete/", {}),
        ("/tags/", {"name": "new"}),
        ("/tags/{tag}/edit/", {"name": "renamed"}),
        ("/tags/{tag}/delete/", {}),
    ],
)
def test_a_post_without_the_csrf_token_is_refused(alice, url, data):
    category = make_category(alice, "Work")
    tag = make_tag(alice, "home")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(url.format(category=category.pk, tag=tag.pk), data)

    assert response.status_code == 403
    assert list(Category.objects.values_list("name", flat=True)) == ["Work"]
    assert list(Tag.objects.values_list("name", flat=True)) == ["home"]


# --- query counts ---------------------------------------------------------------------------

#: Session, user, profile, the list with its counts, the sidebar's four queries, and the
#: live-updates position the page's stream starts from.
LABEL_PAGE_QUERIES = 9


@pytest.mark.parametrize("n", [1, 30])
@pytest.mark.parametrize("url", ["/categories/", "/tags/"])
def test_the_categories_and_tags_pages_run_the_same_queries_for_1_and_30_rows(
    alice_client, alice, django_assert_num_queries, url, n
):
    for i in range(n):
        make_task(alice, category=make_category(alice, f"Category {i}"), tags=[f"tag{i}"])

    with django_assert_num_queries(LABEL_PAGE_QUERIES):
        response = alice_client.get(url)

    assert response.status_code == 200
    assert len(parse(response).find_all("tbody")[0].find_all("tr")) == n
