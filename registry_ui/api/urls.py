"""URLs of namespace 'registry_api' (mounted in registry_ui/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "registry_api"
urlpatterns: list = []
