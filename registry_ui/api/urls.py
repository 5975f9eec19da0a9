"""URLs of namespace 'registry_api' (mounted in registry_ui/urls.py).

Model names: MLflow refuses '/' and ':' in them, so one path segment (<str:name>) holds any name it
accepts (unicode, spaces, dots, quotes arrive percent-encoded and are decoded by Django)."""

from django.urls import path

from registry_ui.api import views

app_name = "registry_api"
urlpatterns = [
    path("models/", views.ModelList.as_view(), name="model_list"),
    path("models/<str:name>/", views.ModelDetail.as_view(), name="model_detail"),
    path("models/<str:name>/versions/", views.VersionList.as_view(), name="version_list"),
    path("models/<str:name>/versions/<int:version>/", views.VersionDetail.as_view(), name="version_detail"),
    path("sync/status/", views.SyncStatus.as_view(), name="sync_status"),
]
