"""SQLite: the queue's tally per (model, engine, priority), kept by triggers (orchestrator/tasks/tally.py)."""

from django.db import migrations

from orchestrator.tasks import tally


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            tally.install(cursor)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            tally.remove(cursor)


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0004_task_queue_position"),
    ]

    operations = [
        migrations.RunPython(install, remove),
    ]
