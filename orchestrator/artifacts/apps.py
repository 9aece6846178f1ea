from django.apps import AppConfig


class ArtifactsConfig(AppConfig):
    name = "orchestrator.artifacts"
    label = "artifacts"
    verbose_name = "Artifacts"
    default_auto_field = "django.db.models.BigAutoField"
