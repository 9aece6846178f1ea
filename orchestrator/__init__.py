"""orchestratord: the Django project and the core of the data plane."""

from orchestrator.celery import app as celery_app

__all__ = ("celery_app",)
