"""Indexes for ``search`` and the tag filters.

- Tag filters: ``task_tags (tag_id, task_id)``, so the tasks with a tag are an index-only range
  (the M2M table only had ``(task_id, tag_id)`` and ``(tag_id)``).
- Search on PostgreSQL: a GIN index over the owner and, with ``pg_trgm``, the trigrams of
  ``UPPER(title || E'\\n' || description)`` (``tasks.models.SearchText``), which serves
  ``UPPER(...) LIKE UPPER('%word%')`` for one user. ``btree_gin`` puts ``user_id`` in it.
- Search on SQLite: an FTS5 table with the ``trigram`` tokenizer (SQLite 3.34+) over the
  title and description of each task, under the task's id, kept in sync by triggers.

A later migration that makes Django rebuild ``tasks_task`` on SQLite (most ALTERs do) drops
these triggers with the old table: it must create them again (see ``SQLITE_TRIGGERS``);
``tests/tasks/test_search_index.py`` fails until it does.
"""

from django.contrib.postgres import operations as postgres
from django.db import migrations

TAG_INDEX = 'CREATE INDEX "task_tags_tag_task" ON "task_tags" ("tag_id", "task_id")'

PG_SEARCH_INDEX = (
    'CREATE INDEX "task_search_trgm" ON "tasks_task" USING gin '
    '("user_id", UPPER(("title"::text || E\'\\n\' || "description")) gin_trgm_ops)'
)

FTS = "tasks_task_search"
SQLITE_TABLE = (
    f'CREATE VIRTUAL TABLE "{FTS}" USING fts5(title, description, '
    "content='tasks_task', content_rowid='id', tokenize='trigram')"
)
_INSERT = (
    f"INSERT INTO {FTS}(rowid, title, description) VALUES (new.id, new.title, new.description);"
)
_DELETE = (
    f"INSERT INTO {FTS}({FTS}, rowid, title, description) "
    "VALUES ('delete', old.id, old.title, old.description);"
)
SQLITE_TRIGGERS = {
    "tasks_task_search_insert": f"AFTER INSERT ON tasks_task BEGIN {_INSERT} END",
    "tasks_task_search_delete": f"AFTER DELETE ON tasks_task BEGIN {_DELETE} END",
    "tasks_task_search_update": (
        f"AFTER UPDATE OF title, description ON tasks_task BEGIN {_DELETE} {_INSERT} END"
    ),
}


def create_search_index(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_SEARCH_INDEX)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_TABLE)
        schema_editor.execute(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")
        for name, body in SQLITE_TRIGGERS.items():
            schema_editor.execute(f'CREATE TRIGGER "{name}" {body}')


def drop_search_index(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute('DROP INDEX IF EXISTS "task_search_trgm"')
    elif vendor == "sqlite":
        for name in SQLITE_TRIGGERS:
            schema_editor.execute(f'DROP TRIGGER IF EXISTS "{name}"')
        schema_editor.execute(f'DROP TABLE IF EXISTS "{FTS}"')


class PostgreSQLOnly:
    """Django's extension operations create only on PostgreSQL but would drop anywhere
    (reading ``pg_extension`` on SQLite): undone only on PostgreSQL too."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class TrigramExtension(PostgreSQLOnly, postgres.TrigramExtension):
    pass


class BtreeGinExtension(PostgreSQLOnly, postgres.BtreeGinExtension):
    pass


class Migration(migrations.Migration):
    dependencies = [("tasks", "0009_api_tokens")]

    operations = [
        migrations.RunSQL(TAG_INDEX, 'DROP INDEX IF EXISTS "task_tags_tag_task"'),
        # Both are no-ops on other databases.
        TrigramExtension(),
        BtreeGinExtension(),
        migrations.RunPython(create_search_index, drop_search_index),
    ]
