from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    """The project package as an app: system checks, management commands."""

    name = "orchestrator"
    verbose_name = "orchestratord"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from orchestrator import checks, heap  # noqa: F401 - `checks` registers the system checks
        from orchestrator.db import statements

        request_finished.connect(statements.flush, dispatch_uid="orchd-statements-flush")
        request_finished.connect(heap.flush, dispatch_uid="orchd-gc-pauses-flush")
