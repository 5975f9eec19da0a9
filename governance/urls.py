"""URLs of namespace 'governance' (mounted in registry_ui/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "governance"
urlpatterns: list = []
