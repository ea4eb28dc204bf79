"""The raw baseline: the same requests answered with a DB-API cursor and orjson.

Auth (the token digest lookup the app does), the page, its tags, the count and the JSON
document, with the app's keys and values (date-times in each task's own zone, durations as
DRF writes them, the rule in words, the ``next``/``previous`` links), so the comparison is
"auth + SQL + JSON" against "auth + SQL + JSON". The same code serves the plain Django views
of the load runs (``benchmarks.views``) through Django's cursor.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import zoneinfo
from dataclasses import dataclass

import orjson

TASK_COLUMNS = (
    "id", "title", "description", "completed", "completed_at", "priority", "due_date",
    "timezone", "category_id", "recurrence_rule", "recurrence_type", "recurrence_interval",
    "recurrence_mode", "remind_at", "remind_before", "reminder_sent", "next_occurrence_at",
    "last_triggered_at", "parent_id", "series_id", "occurrence", "created_at", "updated_at",
)  # fmt: skip
SELECT_TASK = "SELECT " + ", ".join(f"t.{c}" for c in TASK_COLUMNS) + " FROM tasks_task t"
DATETIMES = {
    "completed_at", "due_date", "remind_at", "next_occurrence_at", "last_triggered_at",
    "occurrence", "created_at", "updated_at",
}  # fmt: skip
BOOLEANS = {"completed", "reminder_sent"}
RENAMED = {"category_id": "category", "parent_id": "parent", "series_id": "series"}


class Unauthorized(Exception):
    pass


class NotFound(Exception):
    pass


@functools.cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


@functools.cache
def rule_in_words(rule_text: str, rtype: str, interval: int) -> str:
    """The serializer's ``recurrence_description``, memoised (a handful of distinct rules)."""
    from recurrence.describe import describe
    from recurrence.rules import preset_rule

    rule = rule_text or preset_rule(rtype, interval)
    return describe(rule) if rule else ""


def as_datetime(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime, tz: zoneinfo.ZoneInfo) -> str:
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def task_document(row: tuple, tags: list[str]) -> dict:
    from tasks.api.durations import iso_duration

    doc = {}
    tz = zone(row[7])
    for name, value in zip(TASK_COLUMNS, row, strict=True):
        if name in DATETIMES:
            value = as_datetime(value)
            value = iso(value, tz) if value is not None else None
        elif name in BOOLEANS:
            value = bool(value)
        elif name == "remind_before" and value is not None:
            if not isinstance(value, dt.timedelta):
                value = dt.timedelta(microseconds=value)
            value = iso_duration(value)
        doc[RENAMED.get(name, name)] = value
    doc["tags"] = tags
    doc["recurrence_description"] = rule_in_words(
        doc["recurrence_rule"], doc["recurrence_type"], doc["recurrence_interval"]
    )
    return doc


@dataclass(frozen=True)
class ListQuery:
    """One list request: its query string and the same filter and order in SQL."""

    query: str
    where: str = ""
    params: tuple = ()
    order: str = "t.created_at DESC, t.id DESC"
    #: ``tags=``: the user's tags of these (lower-case) names are looked up first, then the
    #: tasks linked to those ids (``EXISTS`` for the page, the links alone for the count).
    tags: tuple[str, ...] = ()


class Raw:
    """Answers with a DB-API connection: psycopg or sqlite3 (``?`` placeholders), or
    Django's cursor (``%s`` on both)."""

    def __init__(self, cursor_factory, vendor: str, placeholder: str = "%s") -> None:
        self.cursor = cursor_factory
        self.vendor = vendor
        self.placeholder = placeholder

    def sql(self, text: str) -> str:
        return text if self.placeholder == "%s" else text.replace("%s", self.placeholder)

    def in_list(self, column: str, values: list) -> tuple[str, list]:
        if self.vendor == "postgresql":
            return f"{column} = ANY(%s)", [list(values)]
        return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)

    def authenticate(self, cur, secret: str) -> int:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        cur.execute(
            self.sql(
                "SELECT k.user_id, k.expires_at, u.is_active FROM tasks_apitoken k "
                "JOIN auth_user u ON u.id = k.user_id WHERE k.digest = %s"
            ),
            [digest],
        )
        row = cur.fetchone()
        if row is None or not row[2]:
            raise Unauthorized
        expires = as_datetime(row[1])
        if expires is not None and expires <= dt.datetime.now(dt.UTC):
            raise Unauthorized
        return row[0]

    def tags_of(self, cur, user_id: int, ids: list[int]) -> dict[int, list[str]]:
        """The tasks' tag names; a task carries only its owner's tags, so the join reads the
        owner's tags by index (as the app's query does)."""
        found: dict[int, list[str]] = {i: [] for i in ids}
        if not ids:
            return found
        where, params = self.in_list("tt.task_id", ids)
        cur.execute(
            self.sql(
                "SELECT tt.task_id, g.name FROM task_tags tt JOIN tasks_tag g ON g.id = tt.tag_id "
                f"WHERE {where} AND g.user_id = %s ORDER BY lower(g.name), g.id"
            ),
            [*params, user_id],
        )
        for task_id, name in cur.fetchall():
            found[task_id].append(name)
        return found

    def tag_ids(self, cur, user_id: int, names: tuple[str, ...]) -> list[int]:
        where, params = self.in_list("lower(name)", list(names))
        cur.execute(
            self.sql(f"SELECT id FROM tasks_tag WHERE user_id = %s AND {where}"),
            [user_id, *params],
        )
        return [row[0] for row in cur.fetchall()]

    def list(self, secret: str, q: ListQuery, *, base_url: str, page_size: int = 50) -> bytes:
        from rest_framework.utils.urls import replace_query_param

        cur = self.cursor()
        try:
            user_id = self.authenticate(cur, secret)
            where, params = f"t.user_id = %s {q.where}", [user_id, *q.params]
            count_sql = f"SELECT COUNT(*) FROM tasks_task t WHERE {where}"
            count_params = params
            if q.tags:
                tag_ids = self.tag_ids(cur, user_id, q.tags) or [0]
                linked, link_params = self.in_list("tt.tag_id", tag_ids)
                where += (
                    f" AND EXISTS (SELECT 1 FROM task_tags tt WHERE tt.task_id = t.id AND {linked})"
                )
                params = [*params, *link_params]
                count_sql = f"SELECT COUNT(DISTINCT tt.task_id) FROM task_tags tt WHERE {linked}"
                count_params = link_params
            cur.execute(
                self.sql(f"{SELECT_TASK} WHERE {where} ORDER BY {q.order} LIMIT {page_size}"),
                params,
            )
            rows = cur.fetchall()
            tags = self.tags_of(cur, user_id, [row[0] for row in rows])
            cur.execute(self.sql(count_sql), count_params)
            count = cur.fetchone()[0]
        finally:
            cur.close()
        url = f"{base_url}?{q.query}" if q.query else base_url
        return orjson.dumps(
            {
                "count": count,
                "next": replace_query_param(url, "page", 2) if count > page_size else None,
                "previous": None,
                "results": [task_document(row, tags[row[0]]) for row in rows],
            }
        )

    def detail(self, secret: str, task_id: int) -> bytes:
        cur = self.cursor()
        try:
            user_id = self.authenticate(cur, secret)
            cur.execute(
                self.sql(f"{SELECT_TASK} WHERE t.id = %s AND t.user_id = %s"), [task_id, user_id]
            )
            row = cur.fetchone()
            if row is None:
                raise NotFound
            tags = self.tags_of(cur, user_id, [task_id])
        finally:
            cur.close()
        return orjson.dumps(task_document(row, tags[task_id]))


def list_queries(vendor: str) -> dict[str, ListQuery]:
    """The five list cases: the endpoint's query string and the SQL that answers it."""
    if vendor == "postgresql":  # what the pg_trgm index of migration 0010 serves
        search = ("AND UPPER(t.title || E'\\n' || t.description) LIKE UPPER(%s)", ("%invoice%",))
    else:  # the FTS5 trigram table of migration 0010
        search = (
            "AND t.id IN (SELECT rowid FROM tasks_task_search WHERE tasks_task_search MATCH %s)",
            ('"invoice"',),
        )
    return {
        "list": ListQuery("page_size=50"),
        "list -priority pending": ListQuery(
            "ordering=-priority&status=pending&page_size=50",
            where="AND t.completed = %s",
            params=(False,),
            order="t.priority_rank DESC, t.id DESC",
        ),
        "list due_date": ListQuery(
            "ordering=due_date&page_size=50", order="t.due_date ASC NULLS LAST, t.id ASC"
        ),
        "list tags=work": ListQuery("tags=work&page_size=50", tags=("work",)),
        "list search=invoice": ListQuery(
            "search=invoice&page_size=50",
            where=search[0],
            params=search[1],
        ),
    }


def raw_connection(settings_dict: dict):
    """A DB-API connection of our own to the benchmark database (autocommit)."""
    if settings_dict["ENGINE"].endswith("postgresql"):
        import psycopg

        conn = psycopg.connect(
            dbname=settings_dict["NAME"],
            user=settings_dict.get("USER") or None,
            password=settings_dict.get("PASSWORD") or None,
            host=settings_dict.get("HOST") or None,
            port=settings_dict.get("PORT") or None,
            autocommit=True,
        )
        conn.execute("SET TIME ZONE 'UTC'")
        return Raw(conn.cursor, "postgresql"), conn
    import sqlite3

    conn = sqlite3.connect(settings_dict["NAME"], isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    return Raw(conn.cursor, "sqlite", placeholder="?"), conn
