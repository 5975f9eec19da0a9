"""URLs of namespace 'registry' (mounted in registry_ui/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "registry"
urlpatterns: list = []
