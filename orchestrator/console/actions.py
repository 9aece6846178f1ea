"""Admin actions that ask first and record what they did.

`confirmed()` turns an action into two steps: a page listing the selected
objects (with a form when the action needs input, such as a drain deadline),
then the action itself once that page is submitted. `apply_each()` calls the
service for each object inside `audited()`, so the audit log gets one event
per object with its outcome, and a service's refusal (an ApiError such as
"a reload is already pending") becomes an error message, not a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse

from orchestrator.api.errors import ApiError
from orchestrator.audit.services import Outcome, Source, audited

M = TypeVar("M", bound=Model)
F = TypeVar("F", bound=forms.Form)
CONFIRM_FIELD = "confirm"


class ConfirmForm(forms.Form):
    """An action with nothing to ask but 'are you sure?'."""


def confirmed(
    model_admin: admin.ModelAdmin[M],
    request: HttpRequest,
    queryset: QuerySet[M],
    *,
    title: str,
    verb: str,
    form_class: type[F],
    perform: Callable[[F], None],
    question: str = "",
) -> TemplateResponse | None:
    """The confirmation page, or None once the action ran (the admin then redirects to the list)."""
    if request.POST.get(CONFIRM_FIELD) == "yes":
        form = form_class(request.POST)
        if form.is_valid():
            perform(form)
            return None
    else:
        form = form_class()
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "verb": verb,
        "question": question or f"{title}: are you sure? These will be affected:",
        "objects": list(queryset),
        "form": form,
        "action": request.POST.get("action", ""),
        "opts": opts,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "confirm_field": CONFIRM_FIELD,
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        "media": model_admin.media + form.media,
    }
    return TemplateResponse(request, "console/confirm_action.html", context)


def apply_each(
    model_admin: admin.ModelAdmin[M],
    request: HttpRequest,
    objects: Iterable[M],
    action: str,
    perform: Callable[[M], object],
    *,
    done: str,
    **details: Any,
) -> int:
    """Run `perform` on each object, audited; returns how many changed (`perform` returns False for no change)."""
    actor = request.user.get_username()
    changed = unchanged = 0
    for obj in objects:
        try:
            with audited(actor, action, obj, source=Source.ADMIN, **details) as attempt:
                result = perform(obj)
                if result is False:
                    attempt.outcome = Outcome.NOOP
        except ApiError as exc:
            model_admin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            continue
        if result is False:
            unchanged += 1
        else:
            changed += 1
    note = f" ({unchanged} unchanged)" if unchanged else ""
    model_admin.message_user(request, done.format(count=changed) + note, messages.SUCCESS)
    return changed


def user_may(request: HttpRequest, permission: str) -> bool:
    """For `has_<action>_permission` methods: the Django permission gating an action."""
    return bool(request.user.has_perm(permission))
