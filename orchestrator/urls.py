"""Top-level routes. Each app owns its `api/urls.py`; this file only mounts them."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v2/schema", SpectacularAPIView.as_view(), name="schema"),
    path("v2/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("v2/catalog/", include("catalog.api.urls")),
    path("v2/", include("nodes.api.urls")),
    path("v2/", include("pools.api.urls")),
    path("v2/", include("orchestrator.tasks.api.urls")),
    path("v2/sessions/", include("orchestrator.sessions.api.urls")),
    path("v2/", include("orchestrator.artifacts.api.urls")),
    path("", include("orchestrator.meta.urls")),
]

handler400 = "orchestrator.api.errors.handler400"
handler403 = "orchestrator.api.errors.handler403"
handler404 = "orchestrator.api.errors.handler404"
handler500 = "orchestrator.api.errors.handler500"
