from django.apps import AppConfig


class AuthConfig(AppConfig):
    name = "orchestrator.auth"
    label = "orchd_auth"
    verbose_name = "API access"
    default_auto_field = "django.db.models.BigAutoField"
