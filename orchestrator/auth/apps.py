from django.apps import AppConfig


class AuthConfig(AppConfig):
    name = "orchestrator.auth"
    label = "orchd_auth"
    verbose_name = "API access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orchestrator.auth import schema  # noqa: F401 - registers the OpenAPI security scheme
