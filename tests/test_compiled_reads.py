"""``todo_project.compiled_reads.CompiledRead``: a ``values()`` query the ORM compiles once,
run with other values, answers what the ORM would, and refuses what it cannot substitute."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import NotSupportedError, connection
from django.db.models import F, Q

from tasks.models import Task
from tests.factories import make_task
from todo_project.compiled_reads import AnyOf, CompiledRead

COLUMNS = ("id", "title", "due_date", "remind_before", "completed", "created_at")


def _owned_task(user_id: int, task_id: int):
    return Task.objects.filter(user_id=user_id, pk=task_id).values(*COLUMNS)


OWNED_TASK = CompiledRead(_owned_task, user_id=int, task_id=int)


def test_each_run_answers_what_the_orm_answers_for_those_values(alice, bob):
    due = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    first = make_task(alice, title="First", due_date=due, remind_before=dt.timedelta(hours=2))
    second = make_task(alice, title="Second")
    bobs = make_task(bob, title="Bob's")

    for user, task in [(alice, first), (alice, second), (bob, bobs), (alice, bobs)]:
        expected = list(_owned_task(user.pk, task.pk))
        assert OWNED_TASK.rows(user_id=user.pk, task_id=task.pk) == expected

    (row,) = OWNED_TASK.rows(user_id=alice.pk, task_id=first.pk)
    assert row["due_date"] == due  # an aware datetime on every database
    assert row["remind_before"] == dt.timedelta(hours=2)
    assert OWNED_TASK.rows(user_id=alice.pk, task_id=bobs.pk) == []


def test_a_parameter_used_twice_takes_the_value_in_both_places(alice):
    parent = make_task(alice, title="Parent")
    child = make_task(alice, title="Child", parent=parent)
    make_task(alice, title="Unrelated")
    family = CompiledRead(
        lambda task_id: (
            Task.objects.filter(Q(pk=task_id) | Q(parent_id=task_id)).order_by("id").values("title")
        ),
        task_id=int,
    )

    assert family.rows(task_id=parent.pk) == [{"title": "Parent"}, {"title": "Child"}]
    assert family.rows(task_id=child.pk) == [{"title": "Child"}]


def test_a_parameter_the_orm_rewrites_is_refused_when_first_compiled(alice):
    containing = CompiledRead(
        lambda text: Task.objects.filter(title__contains=text).values("id"), text=str
    )

    with pytest.raises(ValueError, match="not sent as SQL parameters: text"):
        containing.rows(text="rent")


def test_a_query_of_model_instances_is_refused(alice):
    instances = CompiledRead(lambda task_id: Task.objects.filter(pk=task_id), task_id=int)

    with pytest.raises(ValueError, match="values"):
        instances.rows(task_id=1)


@pytest.mark.parametrize("value", ["1", True, 1.0])
def test_a_value_of_another_type_is_refused(alice, value):
    with pytest.raises(TypeError, match="user_id must be int"):
        OWNED_TASK.rows(user_id=value, task_id=1)


POSTGRESQL_ONLY = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's")

TITLES_OF = CompiledRead(
    lambda task_ids: Task.objects.filter(AnyOf(F("id"), task_ids)).order_by("id").values("title"),
    task_ids=list,
)


def test_a_list_of_ids_is_one_parameter_whatever_its_length(alice):
    tasks = [make_task(alice, title=f"Task {n}") for n in range(4)]
    ids = [task.pk for task in tasks]

    for chosen in ([], ids[:1], ids[1:3], ids, [*ids, 2**62]):
        expected = list(Task.objects.filter(pk__in=chosen).order_by("id").values("title"))
        assert TITLES_OF.rows(task_ids=chosen) == expected
    assert TITLES_OF.compiled(connection.alias).sql.count("%s") == 1


@pytest.mark.parametrize("value", [["1"], [1.0], (1, 2), [True]])
def test_a_list_parameter_takes_a_list_of_ints_only(db, value):
    with pytest.raises(TypeError, match="task_ids must be"):
        TITLES_OF.rows(task_ids=value)


def test_any_of_is_refused_on_a_database_without_its_sql():
    oracle = SimpleNamespace(vendor="oracle")
    with pytest.raises(NotSupportedError, match="no SQL for oracle"):
        AnyOf(F("id"), [1]).as_sql(compiler=None, connection=oracle)


@POSTGRESQL_ONLY
def test_postgresql_prepares_a_compiled_read_the_connection_runs_often(alice):
    task = make_task(alice)

    def is_prepared() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            statements = [statement for (statement,) in cursor.fetchall()]
        # psycopg sends the statement with $1, $2... in place of each %s.
        parts = OWNED_TASK.compiled(connection.alias).sql.split("%s")
        sql = "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]
        return sql in statements

    OWNED_TASK.rows(user_id=alice.pk, task_id=task.pk)
    assert not is_prepared()
    for _ in range(9):
        OWNED_TASK.rows(user_id=alice.pk, task_id=task.pk)
    assert is_prepared()
    assert OWNED_TASK.rows(user_id=alice.pk, task_id=task.pk)[0]["id"] == task.pk


@pytest.mark.parametrize(("value", "threshold"), [(None, "5"), ("false", "None")])
def test_prepared_statements_can_be_turned_off_for_a_pooler(value, threshold):
    environment = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"}
    environment.pop("DATABASE_PREPARED_STATEMENTS", None)
    environment["DJANGO_SETTINGS_MODULE"] = "todo_project.settings"
    environment.setdefault("SECRET_KEY", "test-only")
    if value is not None:
        environment["DATABASE_PREPARED_STATEMENTS"] = value
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DATABASES['default']['OPTIONS']['prepare_threshold'])",
        ],
        env=environment,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == threshold
