"""What the read path's shortcuts (tasks/api/reading.py, the detail in tasks/api/views.py and
its compiled reads, todo_project/hosts.py) must not change: each user sees only their own
task, from any thread; a filter on a detail is still validated; an allowed address Host
needs no second resolve."""

from __future__ import annotations

import threading

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client

from tasks.api import reading
from tests.factories import make_task


def test_the_compiled_detail_read_is_each_users_own(alice, bob, api, bob_api):
    mine = make_task(alice, title="Alice's", tags=["b", "A"])
    theirs = make_task(bob, title="Bob's")
    assert api.get(f"/api/tasks/{mine.pk}/").json()["tags"] == ["A", "b"]
    assert api.get(f"/api/tasks/{theirs.pk}/").status_code == 404
    assert bob_api.get(f"/api/tasks/{theirs.pk}/").json()["title"] == "Bob's"
    assert bob_api.get(f"/api/tasks/{mine.pk}/").status_code == 404
    assert reading.task_representation(user=bob, task_id=mine.pk) is None


@pytest.mark.django_db(transaction=True)
def test_another_thread_reads_a_detail_with_a_query_compiled_for_it(alice, bob):
    mine = make_task(alice, title="Alice's", tags=["garden"])
    theirs = make_task(bob, title="Bob's")
    here = reading.task_representation(user=alice, task_id=mine.pk)
    there = {}

    def read():
        try:
            there["mine"] = reading.task_representation(user=alice, task_id=mine.pk)
            there["theirs"] = reading.task_representation(user=alice, task_id=theirs.pk)
            there["compiled"] = reading._TASK_ROW.compiled(DEFAULT_DB_ALIAS)
        finally:
            connections.close_all()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()

    assert there["mine"] == here
    assert here["tags"] == ["garden"]
    assert there["theirs"] is None
    assert there["compiled"] is not reading._TASK_ROW.compiled(DEFAULT_DB_ALIAS)


@pytest.mark.parametrize("task_id", ["abc", "0", "-1", str(2**63), "99999999999999999999999"])
def test_a_detail_of_no_possible_task_is_a_404(api, task_id):
    assert api.get(f"/api/tasks/{task_id}/").status_code == 404


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
