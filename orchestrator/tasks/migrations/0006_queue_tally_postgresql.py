"""PostgreSQL: the queue's tally per (model, engine, priority), kept by triggers as deltas (orchestrator/tasks/tally.py)."""

from django.db import migrations

from orchestrator.tasks import tally


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            tally.install(cursor, "postgresql")


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            tally.remove(cursor, "postgresql")


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0005_queue_tally"),
    ]

    operations = [
        migrations.RunPython(install, remove),
    ]
