from django.db import migrations

INDEX_SQL = (
    'CREATE INDEX IF NOT EXISTS "task_user_due_desc" '
    'ON "tasks_task" ("user_id", "due_date" DESC NULLS LAST, "id" DESC)'
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INDEX_SQL)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute('DROP INDEX IF EXISTS "task_user_due_desc"')


class Migration(migrations.Migration):
    """Sorting by due date descending with undated tasks last, read off an index (PostgreSQL)."""

    dependencies = [("tasks", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
