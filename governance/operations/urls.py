"""URLs of namespace 'operations' (mounted in registry_ui/urls.py)."""

from django.urls import path

from governance.operations import views

app_name = "operations"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("sync/", views.sync_now, name="sync_now"),
    path("sync/model/", views.sync_model, name="sync_model"),
    path("tasks/<uuid:task_id>/", views.task_status, name="task_status"),
]
