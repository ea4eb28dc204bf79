"""What the read path's shortcuts (tasks/api/reading.py, the detail in tasks/api/views.py,
todo_project/hosts.py) must not change: each user sees only their own task, from any thread;
a filter on a detail is still validated; an allowed address Host needs no second resolve."""

from __future__ import annotations

from django.test import Client

from tasks.api import reading
from tests.factories import make_task


def test_the_per_thread_rows_query_is_each_users_own(alice, bob, api, bob_api):
    mine = make_task(alice, title="Alice's", tags=["b", "A"])
    theirs = make_task(bob, title="Bob's")
    assert api.get(f"/api/tasks/{mine.pk}/").json()["tags"] == ["A", "b"]
    assert api.get(f"/api/tasks/{theirs.pk}/").status_code == 404
    assert bob_api.get(f"/api/tasks/{theirs.pk}/").json()["title"] == "Bob's"
    assert bob_api.get(f"/api/tasks/{mine.pk}/").status_code == 404
    assert list(reading.user_task_rows(bob).values_list("id", flat=True)) == [theirs.pk]


def test_a_detail_with_an_invalid_filter_is_a_400_naming_it(api, alice):
    task = make_task(alice)
    response = api.get(f"/api/tasks/{task.pk}/?ordering=nonsense")
    assert response.status_code == 400
    assert "ordering" in response.json()


def test_a_detail_with_and_without_a_matching_filter_is_the_same_body(api, alice):
    task = make_task(alice, title="Same", tags=["x"])
    plain = api.get(f"/api/tasks/{task.pk}/").content
    assert api.get(f"/api/tasks/{task.pk}/?status=pending").content == plain


def test_an_allowed_address_host_is_not_resolved_twice(db, settings, monkeypatch):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]

    def fail(path):
        raise AssertionError(f"resolved {path} again")

    monkeypatch.setattr("todo_project.hosts.is_internal", fail)
    assert Client().get("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 200
