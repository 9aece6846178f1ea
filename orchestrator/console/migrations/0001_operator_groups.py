"""The two operator groups: `viewers` see everything, `operators` also act.

Permissions are normally created after all migrations ran (post_migrate);
this migration creates those of the apps it depends on first, so the groups
can be filled on a fresh database too. Superusers need neither group.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWERS = "viewers"
OPERATORS = "operators"

# Apps whose every model viewers (and operators) may look at.
VIEWED_APPS = (
    "catalog",
    "nodes",
    "pools",
    "tasks",
    "orchd_auth",
    "orchd_sessions",
    "artifacts",
    "audit",
    "django_celery_beat",
)
BEAT_MODELS = ("periodictask", "intervalschedule", "crontabschedule", "solarschedule", "clockedschedule")

# What operators may do beyond looking: the console's actions and the edits that go with them.
OPERATOR_PERMISSIONS = (
    "pools.drain_pool",
    "pools.reload_pool",
    "pools.purge_pool",
    "nodes.deregister_node",
    "catalog.verify_model",
    "catalog.retire_model",
    "catalog.add_catalogmodel",
    "catalog.change_catalogmodel",
    # Cancelling is the only change the admin makes to a task.
    "tasks.change_task",
    "orchd_auth.add_apitoken",
    "orchd_auth.change_apitoken",
    # Budgets are the only editable fields of a session.
    "orchd_sessions.change_session",
    *(f"django_celery_beat.{verb}_{model}" for model in BEAT_MODELS for verb in ("add", "change", "delete")),
)


def create_groups(apps, schema_editor):
    for label in VIEWED_APPS:
        config = apps.get_app_config(label)
        # Historical app configs have no models module, and create_permissions skips those.
        original = getattr(config, "models_module", None)
        config.models_module = original or True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = original
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    views = list(Permission.objects.filter(content_type__app_label__in=VIEWED_APPS, codename__startswith="view_"))
    actions = [_permission(Permission, name) for name in OPERATOR_PERMISSIONS]
    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    viewers.permissions.add(*views)
    operators, _ = Group.objects.get_or_create(name=OPERATORS)
    operators.permissions.add(*views, *actions)


def _permission(Permission, name):
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=(VIEWERS, OPERATORS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("catalog", "0002_alter_catalogmodel_options"),
        ("nodes", "0002_alter_node_options"),
        ("pools", "0002_alter_pool_options"),
        ("tasks", "0002_task_budget_settled_task_max_tokens_requested_and_more"),
        ("orchd_auth", "0002_apitoken_cost_reserved_apitoken_tokens_reserved_and_more"),
        ("orchd_sessions", "0002_session_cost_reserved_session_tokens_reserved"),
        ("artifacts", "0001_initial"),
        ("audit", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
