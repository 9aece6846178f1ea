from django.apps import AppConfig


class SessionsConfig(AppConfig):
    name = "orchestrator.sessions"
    label = "orchd_sessions"
    verbose_name = "Sessions"
    default_auto_field = "django.db.models.BigAutoField"
