"""Mounted at `v2/catalog/`. Model ids may contain `/`, so the suffixed routes come first."""

from django.urls import URLPattern, URLResolver, path

from catalog.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("models", views.ModelListView.as_view(), name="catalog-models"),
    path("models/<path:model_id>/verify", views.VerifyModelView.as_view(), name="catalog-model-verify"),
    path("models/<path:model_id>/state", views.ModelStateView.as_view(), name="catalog-model-state"),
    path("models/<path:model_id>", views.ModelDetailView.as_view(), name="catalog-model"),
    path("availability", views.AvailabilityView.as_view(), name="catalog-availability"),
]
