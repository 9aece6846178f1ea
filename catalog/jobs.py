"""Celery jobs of the catalog ("job", not "task": a task is an inference request)."""

from __future__ import annotations

from celery import shared_task

from catalog.services import run_verification


# acks_late: a worker that dies mid-hash gets the job redelivered; run_verification
# finishes each run at most once, so a second delivery is harmless.
@shared_task(name="catalog.jobs.verify_model", acks_late=True, ignore_result=True)
def verify_model(run_id: str) -> None:
    """Hash and check one model file for the verification run `run_id` (the job id)."""
    run_verification(run_id)
