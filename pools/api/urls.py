from django.urls import URLPattern, URLResolver, path

from pools.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("pools", views.PoolListView.as_view(), name="pool-list"),
    path("pools/<str:pool_id>/health", views.PoolHealthView.as_view(), name="pool-health"),
    path("pools/<str:pool_id>/drain", views.DrainView.as_view(), name="pool-drain"),
    path("pools/<str:pool_id>/undrain", views.UndrainView.as_view(), name="pool-undrain"),
    path("pools/<str:pool_id>/reload", views.ReloadView.as_view(), name="pool-reload"),
    path("pools/<str:pool_id>/purge", views.PurgeView.as_view(), name="pool-purge"),
    path("workers/register", views.StaticWorkerView.as_view(), name="worker-register"),
]
