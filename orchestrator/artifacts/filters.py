"""`GET /v2/artifacts?tag=&kind=`: which artifacts a list shows."""

from __future__ import annotations

import django_filters

from orchestrator.artifacts.models import ArtifactKind, ArtifactQuerySet


# django-filter ships no type information, so FilterSet is Any to mypy.
class ArtifactFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    """`kind` is one of the enum (else 400); `tag` may repeat, and then all must match."""

    kind = django_filters.ChoiceFilter(choices=ArtifactKind.choices)
    tag = django_filters.CharFilter(method="filter_tags", max_length=256)

    def filter_tags(self, queryset: ArtifactQuerySet, name: str, value: str) -> ArtifactQuerySet:
        tags = [tag for tag in self.data.getlist("tag") if tag] or [value]
        return queryset.tagged(*tags)
