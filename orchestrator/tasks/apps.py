from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "orchestrator.tasks"
    label = "tasks"
    verbose_name = "Inference tasks"
    default_auto_field = "django.db.models.BigAutoField"
