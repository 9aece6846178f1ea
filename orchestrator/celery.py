"""The Celery app. Jobs live in each app's `jobs.py` ("task" means an inference task)."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")

app = Celery("orchestrator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")


@task_postrun.connect
def _write_out_statement_metrics(**_: object) -> None:
    from orchestrator.db import statements

    statements.flush()
