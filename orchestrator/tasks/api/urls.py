from django.urls import URLPattern, URLResolver, path

from orchestrator.tasks.api import events, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("tasks", views.TaskCollectionView.as_view(), name="task-list"),
    path("tasks/<str:task_id>", views.TaskDetailView.as_view(), name="task-detail"),
    path("tasks/<str:task_id>/cancel", views.TaskCancelView.as_view(), name="task-cancel"),
    path("tasks/<str:task_id>/events", events.task_events, name="task-events"),
]
