from django.apps import AppConfig


class PoolsConfig(AppConfig):
    name = "pools"
    label = "pools"
    verbose_name = "Pools"
    default_auto_field = "django.db.models.BigAutoField"
