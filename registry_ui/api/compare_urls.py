"""URLs of namespace 'compare_api' (mounted at api/v1/compare/ in registry_ui/urls.py)."""

from django.urls import path

from registry_ui.api.compare import CompareView

app_name = "compare_api"
urlpatterns = [path("", CompareView.as_view(), name="compare")]
