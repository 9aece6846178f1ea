from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "nodes"
    label = "nodes"
    verbose_name = "GPU nodes"
    default_auto_field = "django.db.models.BigAutoField"
