"""Mounted at `v2/`."""

from django.urls import URLPattern, URLResolver, path

from orchestrator.artifacts.api.views import ArtifactCollectionView, ArtifactDetailView

urlpatterns: list[URLPattern | URLResolver] = [
    path("artifacts", ArtifactCollectionView.as_view(), name="artifact-list"),
    path("artifacts/<str:artifact_id>", ArtifactDetailView.as_view(), name="artifact-detail"),
]
