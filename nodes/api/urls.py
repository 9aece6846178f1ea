from django.urls import URLPattern, URLResolver, path

from nodes.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("nodes", views.NodeListView.as_view(), name="node-list"),
    path("nodes/register", views.RegisterView.as_view(), name="node-register"),
    path("nodes/<str:node_id>/heartbeat", views.HeartbeatView.as_view(), name="node-heartbeat"),
    path("nodes/<str:node_id>", views.NodeDetailView.as_view(), name="node-detail"),
]
