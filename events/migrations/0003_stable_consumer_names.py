"""Idempotency records move from handler keys to the routing table's stable consumer names.

Until now a record's consumer was ``f"{consumer}.{handler.__name__}"``; it is now the
consumer's name in events/routing.py. Renaming the old keys keeps already-handled events
recognised when they are delivered again. Only transactional consumers wrote records: the
notifications consumers never did, so the recurrence consumer is the only one to rename.
"""

from django.db import migrations

#: old key -> stable name (frozen here: the table may change, this migration must not).
RENAMES = {"recurrence.spawn_on_completion": "recurrence.spawn-next"}


def _rename(apps, renames: dict[str, str]) -> None:
    ProcessedEvent = apps.get_model("events", "ProcessedEvent")
    for old, new in renames.items():
        # An event recorded under both keys keeps one record (the unique constraint).
        done = ProcessedEvent.objects.filter(consumer=new).values("event_id")
        ProcessedEvent.objects.filter(consumer=old, event_id__in=done).delete()
        ProcessedEvent.objects.filter(consumer=old).update(consumer=new)


def forwards(apps, schema_editor) -> None:
    _rename(apps, RENAMES)


def backwards(apps, schema_editor) -> None:
    _rename(apps, {new: old for old, new in RENAMES.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_scheduledjob"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
