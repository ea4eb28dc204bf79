"""``todo_project.postgres``: on PostgreSQL every timestamp is parsed by psycopg's C loader
and comes out exactly as Django's own loader gives it."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.db import DataError, connection
from django.db.backends.postgresql.psycopg_any import register_tzloader

from tests.factories import make_task
from todo_project.postgres import CParsedTzLoader

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's")

TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid
LITERALS = [
    "2026-03-29 01:30:00+00",
    "2026-03-29 01:30:00.000001+05:45",
    "2026-10-25 00:59:59.999999-09:30",
    "1970-01-01 00:00:00+00",
    "2024-02-29 12:00:00+14",
    # London's clocks go back at 01:00 UTC: both are 01:30 there, before and after.
    "2026-10-25 00:30:00+00",
    "2026-10-25 01:30:00+00",
]
#: The first and last instants Python has: in another session zone they would leave its range.
EXTREMES = ["0001-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00"]


def read(literals: list[str], *, djangos: bool) -> list[dt.datetime]:
    with connection.cursor() as cursor:
        if djangos:  # Django's loader, registered on this cursor only
            register_tzloader(connection.timezone, cursor.cursor)
        cursor.execute(
            "SELECT value::timestamptz FROM unnest(%s::text[]) WITH ORDINALITY AS t(value, n) "
            "ORDER BY n",
            [literals],
        )
        return [value for (value,) in cursor.fetchall()]


@pytest.mark.django_db
def test_each_connection_parses_timestamps_with_the_c_loader():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ, psycopg.pq.Format.TEXT)

    assert issubclass(loader, CParsedTzLoader)
    assert loader.timezone == connection.timezone  # Django adds no loader of its own per cursor


@pytest.mark.django_db
@pytest.mark.parametrize("session_zone", ["UTC", "Asia/Kathmandu", "Europe/London"])
def test_the_values_are_those_djangos_loader_gives(session_zone):
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('TimeZone', %s, false)", [session_zone])
    try:
        ours, djangos = read(LITERALS, djangos=False), read(LITERALS, djangos=True)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('TimeZone', 'UTC', false)")

    assert [(v.isoformat(), v.fold, v.tzinfo) for v in ours] == [
        (v.isoformat(), v.fold, v.tzinfo) for v in djangos
    ]


@pytest.mark.django_db
def test_the_instants_are_those_written():
    literals = LITERALS + EXTREMES
    written = [dt.datetime.fromisoformat(literal) for literal in literals]

    assert read(literals, djangos=False) == written == read(literals, djangos=True)
    assert {value.tzinfo for value in read(literals, djangos=False)} == {dt.UTC}


@pytest.mark.django_db
def test_a_timestamp_postgresql_cannot_give_python_is_refused_as_djangos_is():
    for djangos in (True, False):
        with pytest.raises(DataError, match="infinity"):
            read(["infinity"], djangos=djangos)


def test_a_tasks_dates_read_back_as_written(alice):
    due = dt.datetime(2026, 3, 29, 1, 30, 0, 250, tzinfo=dt.UTC)
    task = make_task(alice, title="Dated", due_date=due)

    task.refresh_from_db()

    assert task.due_date == due and task.due_date.tzinfo is dt.UTC
    assert task.created_at.tzinfo is dt.UTC
