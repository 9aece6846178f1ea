from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class ConsoleConfig(AppConfig):
    """Templates, static files and the migration that creates the operator groups."""

    name = "orchestrator.console"
    label = "console"
    verbose_name = "Operator console"


class ConsoleAdminConfig(AdminConfig):
    """django.contrib.admin with our site as `admin.site`, so the index is the fleet dashboard."""

    default_site = "orchestrator.console.sites.ConsoleAdminSite"
