"""Completing a repeating task searches for the next instance within a budget.

Rules are checked when saved, but a row saved before those checks (or by hand) may hold
a rule that never occurs, or occurs once in decades. Completing it examines at most
``EXPANSION_BUDGET`` candidate instants (about 0.25 s): the completion answers at once,
and the series ends (nothing is spawned) rather than scanning to the year 9000.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from rest_framework.test import APIClient

from events.relay import relay_pending
from recurrence.engine import next_after_completion, next_scheduled
from recurrence.models import RecurrenceSeries
from tasks.models import Task

pytestmark = pytest.mark.django_db

#: CPU seconds a completion may take, whatever its stored rule (the issue's bound is ~2 s).
LIMIT = 2.0
START = dt.datetime(2030, 1, 7, 9, tzinfo=dt.UTC)
PATHOLOGICAL = [
    "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",  # never: dateutil alone scans to the year 9999
    "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30;COUNT=5",
    "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=9;BYMINUTE=0",  # 2044, 2072...
    "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
]


@pytest.fixture
def api(alice) -> APIClient:
    """Alice's API client (signed in directly: these tests are not about tokens)."""
    client = APIClient()
    client.force_authenticate(alice)
    return client


def stored_with_rule(user, make_task, rule: str, mode: str = "schedule") -> Task:
    """A task whose saved rule skipped today's validation, as an old row's may have."""
    task = make_task(user, due_date=START, recurrence_rule="FREQ=DAILY", recurrence_mode=mode)
    Task.objects.filter(pk=task.pk).update(recurrence_rule=rule)
    RecurrenceSeries.objects.filter(pk=task.series_id).update(rule=rule)
    return task


@pytest.mark.parametrize("mode", ["schedule", "completion"])
@pytest.mark.parametrize("rule", PATHOLOGICAL)
def test_completing_a_task_with_a_pathological_stored_rule_answers_quickly(
    api, alice, make_task, rule, mode
):
    task = stored_with_rule(alice, make_task, rule, mode)

    started = time.process_time()
    response = api.post(f"/api/tasks/{task.pk}/complete/")
    spent = time.process_time() - started
    relay_pending()

    assert response.status_code == 200, response.content
    assert response.json()["completed"] is True
    assert spent < LIMIT, f"completing took {spent:.2f} s of CPU"
    assert not Task.objects.filter(parent=task).exists()
    assert RecurrenceSeries.objects.get(pk=task.series_id).ended


def test_the_next_scheduled_instance_is_searched_within_the_budget():
    started = time.process_time()
    found = next_scheduled(
        PATHOLOGICAL[0], START.replace(tzinfo=None), "UTC", after=START.replace(tzinfo=None)
    )

    assert found is None
    assert time.process_time() - started < LIMIT


def test_the_next_instance_after_a_completion_is_searched_within_the_budget():
    started = time.process_time()
    found = next_after_completion(
        PATHOLOGICAL[0],
        START.replace(tzinfo=None),
        "UTC",
        completed_local=START.replace(tzinfo=None),
        instances_so_far=1,
    )

    assert found is None
    assert time.process_time() - started < LIMIT


def test_a_sparse_but_valid_stored_rule_still_spawns_its_next_instance(api, alice, make_task):
    """The negative case: a rule the budget covers goes on as before (next 29 Feb)."""
    task = stored_with_rule(alice, make_task, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29")

    response = api.post(f"/api/tasks/{task.pk}/complete/")
    relay_pending()

    assert response.status_code == 200
    spawned = Task.objects.get(parent=task)
    assert spawned.due_date == dt.datetime(2032, 2, 29, 9, tzinfo=dt.UTC)


def test_quick_add_finds_a_sparse_rules_first_date_quickly(api):
    started = time.process_time()
    response = api.post(
        "/api/tasks/quick-add/", {"text": "Leap day party every 29 february"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["recurrence_rule"] == "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"
    assert response.json()["due_date"].startswith("2028-02-29")
    assert time.process_time() - started < LIMIT
