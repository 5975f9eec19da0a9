"""URLs of namespace 'operations' (mounted in registry_ui/urls.py)."""

from django.urls import path, re_path

from governance.operations import views

app_name = "operations"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("sync/", views.sync_now, name="sync_now"),
    path("sync/model/", views.sync_model, name="sync_model"),
    # A task id: a UUID (database backend) or 32 letters and digits (RQ).
    re_path(r"^tasks/(?P<task_id>[A-Za-z0-9-]{1,64})/$", views.task_status, name="task_status"),
]
