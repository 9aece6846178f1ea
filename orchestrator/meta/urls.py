from django.urls import URLPattern, URLResolver, path

from orchestrator.meta import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("v2/meta/capabilities", views.CapabilitiesView.as_view(), name="meta-capabilities"),
    path("v2/meta/version", views.VersionView.as_view(), name="meta-version"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
]
