from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    """The project package as an app: system checks, management commands."""

    name = "orchestrator"
    verbose_name = "orchestratord"

    def ready(self) -> None:
        from orchestrator import checks  # noqa: F401 - registers the system checks
