"""The partial index of unsettled tasks (lifecycle.settle_ended_unrun).

On PostgreSQL it is built CONCURRENTLY, outside a transaction: a plain
CREATE INDEX would block every write to the task table while it reads the
whole table, on a live database.
"""

from django.db import migrations, models

INDEX = models.Index(fields=["finished_at"], condition=models.Q(budget_settled=False), name="task_unsettled")


def create(apps, schema_editor):
    _apply(apps, schema_editor, INDEX.create_sql, schema_editor.add_index)


def drop(apps, schema_editor):
    _apply(apps, schema_editor, INDEX.remove_sql, schema_editor.remove_index)


def _apply(apps, schema_editor, statement, operation):
    task = apps.get_model("tasks", "Task")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(statement(task, schema_editor, concurrently=True))
    else:
        operation(task, INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("tasks", "0006_queue_tally_postgresql"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="task", index=INDEX)],
            database_operations=[migrations.RunPython(create, drop)],
        ),
    ]
