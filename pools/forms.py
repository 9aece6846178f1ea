"""What the console's pool actions ask before they run: a drain deadline, a model, purge options."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from catalog.models import CatalogModel
from orchestrator.ids import model_id_error
from pools.services import PurgeRequest

# The API's own bound (pools.api.serializers.DrainSerializer): a week.
MAX_DRAIN_DEADLINE_S = 7 * 24 * 3600


class DrainForm(forms.Form):
    deadline_s = forms.IntegerField(
        label="Deadline (seconds)",
        required=False,
        min_value=0,
        max_value=MAX_DRAIN_DEADLINE_S,
        help_text="Tasks still running this long after the drain are ended with WORKER_RESET. "
        "Leave empty to let them finish whenever they finish.",
    )

    def deadline_ms(self) -> int | None:
        seconds = self.cleaned_data.get("deadline_s")
        return None if seconds is None else seconds * 1000


class ReloadForm(forms.Form):
    model = forms.ModelChoiceField(
        label="New model",
        queryset=CatalogModel.objects.active().order_by("id"),
        help_text="Only Active catalog entries. The pool keeps serving its current model until the agent "
        "reports the new one ready; a failed reload leaves the old one serving.",
    )


class PurgeForm(forms.Form):
    purge_engine = forms.BooleanField(label="Purge the engine", required=False)
    purge_models = forms.CharField(
        label="Purge models", required=False, help_text="Model ids, separated by commas (files under the models dir)."
    )
    drain_first = forms.BooleanField(label="Drain first", required=False, initial=True)
    delete_cache_dirs = forms.BooleanField(label="Delete cache folders", required=False)
    force = forms.BooleanField(label="Force", required=False, help_text="Do not wait for running tasks.")

    def clean_purge_models(self) -> tuple[str, ...]:
        models = tuple(part.strip() for part in self.cleaned_data["purge_models"].split(",") if part.strip())
        bad = [model for model in models if model_id_error(model)]
        if bad:
            raise ValidationError(f"Not model ids: {', '.join(bad)}")
        return models

    def to_request(self) -> PurgeRequest:
        data = self.cleaned_data
        return PurgeRequest(
            purge_engine=data["purge_engine"],
            purge_models=data["purge_models"],
            drain_first=data["drain_first"],
            delete_cache_dirs=data["delete_cache_dirs"],
            force=data["force"],
        )
