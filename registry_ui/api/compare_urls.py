"""URLs of namespace 'compare_api' (mounted in registry_ui/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "compare_api"
urlpatterns: list = []
