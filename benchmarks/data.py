"""The benchmark's data set, loaded server-side and kept between runs.

Every row is computed by the database from ``g``, the row number of a generated series
(``generate_series`` on PostgreSQL, a recursive CTE on SQLite), with cheap multiplicative
hashes ``(g * prime) % m``: the same seed and size always give the same rows, in seconds.
Columns the database derives (``priority_rank``, and any generated column, trigger-fed FTS
table or index a later migration adds) are filled by the database itself, because rows are
inserted with plain INSERTs into the migrated schema.

The loaded database is kept; a fingerprint (the migrations on disk, the sizes, the seed and
:data:`LOADER_VERSION`) says whether it still matches, else it is dropped and loaded again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass

import orjson

#: Bump when the loader's rows change, so kept databases are reloaded.
LOADER_VERSION = 1
USERS = 100
TAGS_PER_USER = 12
CATEGORIES_PER_USER = 8
#: Every 20 consecutive tasks of a user (``g // 20``) hold one recurring series of two
#: instances: ``g % 20 == 0`` the completed first one, ``g % 20 == 1`` the pending one it
#: spawned.
SERIES_BLOCK = 20
TIMEZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
#: (recurrence_type, recurrence_interval, recurrence_rule, the series' effective rule)
RECURRENCES = (
    ("daily", 1, "", "FREQ=DAILY"),
    ("weekly", 2, "", "FREQ=WEEKLY;INTERVAL=2"),
    ("monthly", 1, "", "FREQ=MONTHLY"),
    ("none", 1, "FREQ=WEEKLY;BYDAY=MO,WE,FR", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
)
TAG_NAMES = (
    "work", "home", "errands", "finance", "health", "family", "reading", "garden",
    "travel", "car", "school", "music", "sport", "admin", "shopping", "kids",
)  # fmt: skip
VERBS = (
    "Call", "Email", "Review", "Prepare", "Book", "Fix", "Plan", "Buy", "Clean", "Update",
    "Check", "Write", "Read", "Pay", "Order", "Renew", "Schedule", "Finish", "Draft", "Sort",
)  # fmt: skip
NOUNS = (
    "the report", "dentist", "groceries", "the roof", "quarterly numbers", "slides",
    "the garage", "passport", "car insurance", "team meeting", "birthday gift", "the budget",
    "library books", "gym membership", "the garden", "tax return", "flight tickets",
    "project notes", "the backlog", "bank statement", "school forms", "the boiler",
    "conference talk", "bike repair", "electricity bill",
)  # fmt: skip
QUALIFIERS = (
    "today", "this week", "before Friday", "for Anna", "with Marc", "next month", "again",
    "first thing", "after lunch", "for the client", "at the office", "online",
)  # fmt: skip
#: Share of titles (per cent) and descriptions (per mille) mentioning an invoice: the
#: ``search=invoice`` case matches about 3.5 % of a user's tasks.
INVOICE_TITLE_PERCENT = 3
INVOICE_DESCRIPTION_PERMILLE = 6


@dataclass(frozen=True)
class Size:
    tasks: int
    #: The tasks of the first user (the one measured); the rest are spread over the others.
    big_user_tasks: int
    users: int = USERS
    seed: int = 1

    @classmethod
    def for_vendor(cls, vendor: str, tasks: int | None) -> Size:
        """PostgreSQL: 100 users, the measured one with a tenth of the tasks (100,000 of
        1M). SQLite, the embedded default (a household, a small team): a user per 10,000
        tasks, the measured one with half of them (50,000 of 100,000)."""
        if vendor == "postgresql":
            tasks = tasks or 1_000_000
            return cls(tasks=tasks, big_user_tasks=max(tasks // 10, 20), users=USERS)
        tasks = tasks or 100_000
        return cls(tasks=tasks, big_user_tasks=max(tasks // 2, 20), users=max(2, tasks // 10_000))


def secret_for(user_index: int, size: Size) -> str:
    """The API token secret of a benchmark user (a digest of it is what is stored)."""
    return f"bench-{size.seed}-{user_index}-" + "x" * 24


def fingerprint(connection, size: Size) -> str:
    """Migrations on disk (the schema the code expects), sizes, seed and loader version."""
    from django.db.migrations.loader import MigrationLoader

    nodes = sorted(MigrationLoader(connection, ignore_no_migrations=True).disk_migrations)
    text = orjson.dumps([LOADER_VERSION, connection.vendor, size.__dict__, nodes])
    return hashlib.sha256(text).hexdigest()[:16]


def stored_fingerprint(connection) -> str | None:
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        if "tideline_bench_meta" not in tables:
            return None
        cursor.execute("SELECT value FROM tideline_bench_meta WHERE key = 'fingerprint'")
        row = cursor.fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class Sql:
    """The little that differs between the two dialects."""

    vendor: str
    base: dt.datetime

    def series(self, n: int) -> str:
        if self.vendor == "postgresql":
            return f"WITH RECURSIVE s(g) AS (SELECT generate_series(1, {n}))"
        return f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n})"

    def ts(self, seconds: str) -> str:
        """The load's base instant plus ``seconds`` (an SQL integer expression)."""
        if self.vendor == "postgresql":
            base = f"TIMESTAMPTZ '{self.base:%Y-%m-%d %H:%M:%S}+00'"
            return f"({base} + ({seconds}) * INTERVAL '1 second')"
        return f"datetime('{self.base:%Y-%m-%d %H:%M:%S}', ({seconds}) || ' seconds')"

    def duration(self, seconds: str) -> str:
        if self.vendor == "postgresql":
            return f"(({seconds}) * INTERVAL '1 second')"
        return f"(({seconds}) * 1000000)"  # Django stores a duration as microseconds

    @property
    def true(self) -> str:
        return "true" if self.vendor == "postgresql" else "1"

    @property
    def false(self) -> str:
        return "false" if self.vendor == "postgresql" else "0"


def h(expr: str, prime: int, modulo: int) -> str:
    return f"((({expr}) * {prime}) % {modulo})"


def _case(expr: str, values: tuple[str, ...]) -> str:
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"(CASE {expr} {whens} END)"


def _word(kind: str, index: str) -> str:
    return f"(SELECT w FROM bench_words WHERE kind = '{kind}' AND i = {index})"


class TaskColumns:
    """The SQL expression of each generated task column, from ``g``."""

    def __init__(self, sql: Sql, size: Size) -> None:
        n, users, block = size.tasks, size.users, SERIES_BLOCK
        first_block = max(size.big_user_tasks // block, 1)
        self.user_index = (
            f"(CASE WHEN g / {block} < {first_block} THEN 0 "
            f"ELSE 1 + (g / {block}) % {max(users - 1, 1)} END)"
        )
        spacing = max(1, 31_536_000 // n)  # a year of tasks
        self.created = f"(-({n} - g) * {spacing} - {h('g', 19, spacing)})"
        self.recurring = f"(g % {block} IN (0, 1) AND g > 1)"
        self.kind = f"((g / {block}) % {len(RECURRENCES)})"
        # The pending instance at 09:00 UTC on a day around now, the completed one a week
        # before it.
        self.series_due = (
            f"(({h(f'g / {block}', 7, 60)} - 20) * 86400 + 9 * 3600"
            f" - (1 - g % {block}) * 7 * 86400)"
        )
        self.due = (
            f"(CASE WHEN {self.recurring} THEN {self.series_due} "
            f"WHEN {h('g', 23, 5)} = 0 THEN NULL "
            f"ELSE {self.created} + ({h('g', 29, 60)} - 10) * 86400 + {h('g', 31, 24)} * 3600 END)"
        )
        self.completed = (
            f"(CASE WHEN {self.recurring} THEN g % {block} = 0 ELSE {h('g', 11, 10)} < 3 END)"
        )
        self.remind = h("g", 53, 10)
        self.title = (
            f"(CASE WHEN {h('g', 37, 100)} < {INVOICE_TITLE_PERCENT} "
            f"THEN 'Send invoice to ' || {_word('n', h('g', 41, len(NOUNS)))} "
            f"ELSE {_word('v', h('g', 43, len(VERBS)))} "
            f"|| ' ' || {_word('n', h('g', 47, len(NOUNS)))} "
            f"|| ' ' || {_word('q', h('g', 59, len(QUALIFIERS)))} END)"
        )
        self.description = (
            f"(CASE WHEN {h('g', 61, 1000)} < {INVOICE_DESCRIPTION_PERMILLE} "
            f"THEN 'Attach the invoices from ' || {_word('n', h('g', 67, len(NOUNS)))} "
            f"WHEN {h('g', 71, 10)} < 4 THEN '' "
            f"ELSE 'Remember ' || {_word('n', h('g', 73, len(NOUNS)))} "
            f"|| ' ' || {_word('q', h('g', 79, len(QUALIFIERS)))} END)"
        )
        self.priority = _case(
            h("g", 17, 10), ("urgent", "high", "high", *["medium"] * 4, "low", "low", "low")
        )
        self.timezone = _case(h("g / 2", 83, len(TIMEZONES)), TIMEZONES)
        self.category = (
            f"CASE WHEN {h('g', 97, 3)} <> 0 THEN {self.user_index} * {CATEGORIES_PER_USER}"
            f" + 1 + {h('g', 101, CATEGORIES_PER_USER)} END"
        )
        every = self.recurring
        self.recurrence = (
            f"CASE WHEN {every} THEN {_case(self.kind, tuple(r[2] for r in RECURRENCES))} "
            "ELSE '' END, "
            f"CASE WHEN {every} THEN {_case(self.kind, tuple(r[0] for r in RECURRENCES))} "
            "ELSE 'none' END, "
            f"CASE WHEN {every} AND {self.kind} = 1 THEN 2 ELSE 1 END, "
            f"CASE WHEN {every} AND (g / {block}) % 8 = 7 THEN 'completion' "
            "ELSE 'schedule' END"
        )
        due, remind = self.due, self.remind
        self.reminder = (
            f"CASE WHEN {due} IS NOT NULL AND {remind} < 2 THEN {sql.ts(f'{due} - 3600')} END, "
            f"CASE WHEN {due} IS NOT NULL AND {remind} = 1 THEN {sql.duration('3600')} END, "
            f"({due} IS NOT NULL AND {remind} < 2 AND {due} - 3600 < -7200"
            f" AND {h('g', 103, 10)} >= 3)"
        )


def statements(sql: Sql, size: Size) -> list[tuple[str, str]]:
    """(label, INSERT ... SELECT) of every table, in order."""
    users, cats, tags = size.users, CATEGORIES_PER_USER, TAGS_PER_USER
    old = sql.ts("-400 * 86400")
    t = TaskColumns(sql, size)
    # Every user has "work" (capitalised for every third user: the filter ignores case)
    # and 11 more of TAG_NAMES; tag k of user u (from 0) has id u * TAGS_PER_USER + k + 1.
    other_tag = _case(f"(((g - 1) / {tags}) + ((g - 1) % {tags})) % {len(TAG_NAMES) - 1} + 1",
                      TAG_NAMES)  # fmt: skip
    completed_at = sql.ts(f"{t.created} + 3600 * {h('g', 89, 200)}")
    delivery_state = (
        f"(CASE WHEN t.remind_at > {sql.ts('0')} THEN 'scheduled' "
        "WHEN t.reminder_sent THEN 'sent' ELSE "
        f"{_case(h('t.id', 127, 5), ('missed', 'failed', 'skipped', 'due', 'sending'))} END)"
    )
    return [
        ("users", f"""{sql.series(users)} INSERT INTO auth_user (id, password, is_superuser,
            username, first_name, last_name, email, is_staff, is_active, date_joined)
            SELECT g, '!', {sql.false}, 'bench' || (g - 1), '', '',
            'bench' || (g - 1) || '@example.com', {sql.false}, {sql.true}, {old} FROM s"""),
        ("profiles", f"""{sql.series(users)} INSERT INTO tasks_profile (user_id, timezone,
            reminders_enabled)
            SELECT g, {_case(f"(g % {len(TIMEZONES)})", TIMEZONES)}, (g % 7 <> 3) FROM s"""),
        ("categories", f"""{sql.series(users * cats)} INSERT INTO tasks_category
            (id, user_id, name, color, created_at)
            SELECT g, 1 + (g - 1) / {cats}, 'Area ' || ((g - 1) % {cats}), '#3b82f6', {old}
            FROM s"""),
        ("tags", f"""{sql.series(users * tags)} INSERT INTO tasks_tag
            (id, user_id, name, created_at)
            SELECT g, 1 + (g - 1) / {tags},
            CASE WHEN (g - 1) % {tags} <> 0 THEN {other_tag}
                 WHEN ((g - 1) / {tags}) % 3 = 1 THEN 'Work' ELSE 'work' END, {old}
            FROM s"""),
        (f"{size.tasks} tasks", f"""{sql.series(size.tasks)} INSERT INTO tasks_task (id,
            user_id, title, description, completed, completed_at, priority, due_date, timezone,
            category_id, recurrence_rule, recurrence_type, recurrence_interval, recurrence_mode,
            next_occurrence_at, last_triggered_at, parent_id, series_id, occurrence, remind_at,
            remind_before, reminder_sent, created_at, updated_at)
            SELECT g, 1 + {t.user_index}, {t.title}, {t.description}, {t.completed},
            CASE WHEN {t.completed} THEN {completed_at} END, {t.priority}, {sql.ts(t.due)},
            {t.timezone}, {t.category}, {t.recurrence}, NULL, NULL,
            CASE WHEN g % {SERIES_BLOCK} = 1 AND g > 1 THEN g - 1 END,
            CASE WHEN {t.recurring} THEN g / {SERIES_BLOCK} + 1 END,
            CASE WHEN {t.recurring} THEN {sql.ts(t.series_due)} END,
            {t.reminder}, {sql.ts(t.created)}, {sql.ts(f"{t.created} + {h('g', 107, 86400)}")}
            FROM s"""),
        ("recurrence series", f"""INSERT INTO recurrence_recurrenceseries (id, user_id, rule,
            mode, timezone, anchor_date, anchor_time, instances_created, ended, ended_at,
            created_at)
            SELECT t.series_id, t.user_id,
            CASE t.recurrence_type WHEN 'daily' THEN 'FREQ=DAILY'
                 WHEN 'weekly' THEN 'FREQ=WEEKLY;INTERVAL=2' WHEN 'monthly' THEN 'FREQ=MONTHLY'
                 ELSE t.recurrence_rule END,
            t.recurrence_mode, t.timezone, {_anchor(sql, "date")}, {_anchor(sql, "time")},
            2, {sql.false}, NULL, t.created_at
            FROM tasks_task t WHERE t.id % {SERIES_BLOCK} = 0 AND t.series_id IS NOT NULL"""),
        ("task tags (0-5 per task)", f"""{sql.series(5)} INSERT INTO task_tags (task_id, tag_id)
            SELECT t.id, (t.user_id - 1) * {tags} + 1 + ({h("t.id", 109, tags)} + s.g * 5) % {tags}
            FROM tasks_task t JOIN s ON s.g <= {h("t.id", 113, 6)}"""),
        ("reminder deliveries", f"""INSERT INTO notifications_reminderdelivery (task_id,
            remind_at, state, attempts, next_attempt_at, due_at, claimed_at, sent_at,
            last_error, detail, created_at, updated_at)
            SELECT t.id, t.remind_at, {delivery_state},
            CASE WHEN {delivery_state} = 'failed' THEN 5 ELSE 1 END,
            NULL, t.remind_at, NULL, CASE WHEN t.reminder_sent THEN t.remind_at END,
            CASE WHEN {delivery_state} = 'failed' THEN 'SMTP 451: try again later' ELSE '' END,
            '', t.created_at, t.created_at
            FROM tasks_task t WHERE t.remind_at IS NOT NULL AND {h("t.id", 131, 10)} <> 0"""),
    ]  # fmt: skip


def load(connection, size: Size, *, log=print) -> None:
    """Fill an empty, migrated database (sequences are reset afterwards)."""
    from django.apps import apps
    from django.core.management.color import no_style
    from django.db import transaction

    started = time.perf_counter()
    base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    sql = Sql(connection.vendor, base)
    # One transaction: the foreign keys (deferred) are checked once, at the end.
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if _may_skip_foreign_key_triggers(cursor, connection.vendor):
            # The rows are consistent by construction (SQLite runs check them, as does
            # tests/test_benchmarks.py); PostgreSQL's deferred checks of about 8M references
            # would take longer than the inserts.
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("CREATE TABLE bench_words (kind VARCHAR(1), i INTEGER, w VARCHAR(40))")
        cursor.execute("CREATE UNIQUE INDEX bench_words_ki ON bench_words (kind, i)")
        cursor.executemany(
            "INSERT INTO bench_words VALUES (%s, %s, %s)",
            [
                (kind, i, word)
                for kind, vocabulary in (("v", VERBS), ("n", NOUNS), ("q", QUALIFIERS))
                for i, word in enumerate(vocabulary)
            ],
        )
        for label, statement in statements(sql, size):
            t0 = time.perf_counter()
            cursor.execute(statement)
            log(f"  {label}: {time.perf_counter() - t0:.1f} s")
        cursor.execute("DROP TABLE bench_words")
        _tokens(cursor, connection, size, base)
        models = [
            apps.get_model(label)
            for label in (
                "auth.User",
                "tasks.Profile",
                "tasks.Category",
                "tasks.Tag",
                "tasks.Task",
                "tasks.ApiToken",
                "recurrence.RecurrenceSeries",
                "notifications.ReminderDelivery",
            )
        ]
        models.append(apps.get_model("tasks.Task").tags.through)
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)
    log(f"  loaded in {time.perf_counter() - started:.1f} s")


def _tokens(cursor, connection, size: Size, base: dt.datetime) -> None:
    """One never-expiring API token per user, stored as the app stores them (a digest)."""
    rows = []
    for u in range(size.users):
        secret = secret_for(u, size)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        created = connection.ops.adapt_datetimefield_value(base)
        rows.append((u + 1, "benchmark", secret[:8], digest, created))
    cursor.executemany(
        "INSERT INTO tasks_apitoken (user_id, name, prefix, digest, created_at, expires_at, "
        "last_used_at) VALUES (%s, %s, %s, %s, %s, NULL, NULL)",
        rows,
    )


LOADED_TABLES = (
    "auth_user", "tasks_profile", "tasks_category", "tasks_tag", "tasks_task", "task_tags",
    "recurrence_recurrenceseries", "notifications_reminderdelivery", "tasks_apitoken",
)  # fmt: skip


def _may_skip_foreign_key_triggers(cursor, vendor: str) -> bool:
    """PostgreSQL as a superuser (replica mode needs one), and no trigger of the schema's own
    on the loaded tables: replica mode would skip it too (e.g. one that fills a search
    column), so then the checks stay on."""
    if vendor != "postgresql":
        return False
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not cursor.fetchone()[0]:
        return False
    cursor.execute(
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY(%s::regclass[])",
        [list(LOADED_TABLES)],
    )
    return cursor.fetchone()[0] == 0


def _anchor(sql: Sql, part: str) -> str:
    """The series' anchor: the first instance's due date as wall-clock time in its zone."""
    if sql.vendor == "postgresql":
        return f"(t.due_date AT TIME ZONE t.timezone)::{part}"
    # SQLite has no time zones: the loader fixes these rows up in Python (fix_sqlite_anchors).
    return f"{part}(t.due_date)"


def fix_sqlite_anchors(connection) -> None:
    """SQLite: the anchors as local wall-clock time (PostgreSQL computed them in SQL)."""
    import zoneinfo

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.id, t.due_date, t.timezone FROM recurrence_recurrenceseries s "
            "JOIN tasks_task t ON t.series_id = s.id AND t.id % %s = 0",
            [SERIES_BLOCK],
        )
        rows = []
        for series_id, due, zone in cursor.fetchall():
            if isinstance(due, str):
                due = dt.datetime.fromisoformat(due)
            local = due.replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(zone))
            rows.append((local.date().isoformat(), local.time().isoformat(), series_id))
        cursor.executemany(
            "UPDATE recurrence_recurrenceseries SET anchor_date = %s, anchor_time = %s "
            "WHERE id = %s",
            rows,
        )


def write_fingerprint(connection, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS tideline_bench_meta "
            "(key VARCHAR(40) PRIMARY KEY, value VARCHAR(200))"
        )
        cursor.execute("DELETE FROM tideline_bench_meta")
        cursor.execute(
            "INSERT INTO tideline_bench_meta (key, value) VALUES ('fingerprint', %s)", [value]
        )


def analyze(connection) -> None:
    """VACUUM ANALYZE (PostgreSQL: visibility map for index-only counts, statistics) or
    ANALYZE (SQLite), before measuring."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            autocommit = connection.get_autocommit()
            connection.set_autocommit(True)
            cursor.execute("VACUUM ANALYZE")
            connection.set_autocommit(autocommit)
        else:
            cursor.execute("ANALYZE")


def restore(connection, size: Size) -> None:
    """Undo what earlier runs wrote (created tasks and tags, completed instances, spawned
    ones, the outbox), so every run measures the loaded data set."""
    from django.db import transaction

    n, block = size.tasks, SERIES_BLOCK
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for statement in (
            f"DELETE FROM task_tags WHERE task_id > {n}",
            f"DELETE FROM notifications_reminderdelivery WHERE task_id > {n}",
            f"UPDATE tasks_task SET parent_id = NULL WHERE id > {n}",
            f"DELETE FROM tasks_task WHERE id > {n}",
            f"DELETE FROM tasks_tag WHERE id > {size.users * TAGS_PER_USER}",
            f"DELETE FROM recurrence_recurrenceseries WHERE id > {n // block + 1}",
            "UPDATE recurrence_recurrenceseries SET instances_created = 2 "
            "WHERE instances_created <> 2",
            f"UPDATE tasks_task SET completed = {Sql(connection.vendor, EPOCH).false}, "
            f"completed_at = NULL WHERE id % {block} = 1 AND id > 1 "
            f"AND completed = {Sql(connection.vendor, EPOCH).true}",
            "DELETE FROM events_outboxevent",
            "DELETE FROM events_processedevent",
        ):
            cursor.execute(statement)


EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
