"""The one page that asks before a delete (JavaScript off): tasks, categories, tags, views."""

from __future__ import annotations

import pytest
from django.test import Client

from tasks import services
from tests.factories import make_category, make_tag, make_task
from tests.web.html import parse


@pytest.fixture
def alice_client(client, alice) -> Client:
    client.force_login(alice)
    return client


def _delete_url(kind: str, user) -> str:
    if kind == "task":
        return f"/tasks/{make_task(user, title='Old plan').pk}/delete/"
    if kind == "category":
        return f"/categories/{make_category(user, 'Work').pk}/delete/"
    if kind == "tag":
        return f"/tags/{make_tag(user, 'home').pk}/delete/"
    view = services.saved_view_create(user=user, name="Urgent", filters={"priority": "urgent"})
    return f"/views/{view.pk}/delete/"


@pytest.mark.parametrize(
    ("kind", "heading", "button", "cancel"),
    [
        ("task", "Delete “Old plan”?", "Delete task", "/"),
        ("category", "Delete category “Work”?", "Delete category", "/categories/"),
        ("tag", "Delete tag “home”?", "Delete tag", "/tags/"),
        ("view", "Delete saved view “Urgent”?", "Delete view", "/views/"),
    ],
)
def test_every_delete_asks_on_the_same_page_which_posts_back_to_its_address(
    alice_client, alice, kind, heading, button, cancel
):
    url = _delete_url(kind, alice)

    response = alice_client.get(url)

    assert response.status_code == 200
    assert response.templates[0].name == "tasks/confirm_delete.html"
    main = parse(response).get("main")
    assert main.find_all("h1")[0].text == heading
    form = main.find_all("form")[0]
    assert (form.attrs["method"], form.attrs["action"]) == ("post", url)
    assert [b.text for b in form.find_all("button")] == [button]
    assert [a.attrs["href"] for a in form.find_all("a") if a.text == "Cancel"] == [cancel]


def test_the_task_delete_page_keeps_where_to_go_back_and_warns_about_a_series(alice_client, alice):
    task = make_task(alice, title="Stand-up", recurrence_rule="FREQ=DAILY")

    response = alice_client.get(f"/tasks/{task.pk}/delete/", {"next": "/tasks/?view=today"})

    main = parse(response).get("main")
    assert "its series stops here unless another instance is open" in main.text
    form = main.find_all("form")[0]
    hidden = [i.attrs for i in form.find_all("input") if i.attrs.get("name") == "next"]
    assert [attrs["value"] for attrs in hidden] == ["/tasks/?view=today"]
    assert [a.attrs["href"] for a in form.find_all("a")] == ["/tasks/?view=today"]


def test_the_task_delete_page_does_not_carry_a_next_page_on_another_site(alice_client, alice):
    task = make_task(alice, title="Old plan")

    response = alice_client.get(f"/tasks/{task.pk}/delete/", {"next": "https://evil.example/"})

    form = parse(response).get("main").find_all("form")[0]
    assert [i.attrs["value"] for i in form.find_all("input") if i.attrs["name"] == "next"] == ["/"]
    assert [a.attrs["href"] for a in form.find_all("a")] == ["/"]
