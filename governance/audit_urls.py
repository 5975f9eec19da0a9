"""URLs of namespace 'audit' (mounted in registry_ui/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "audit"
urlpatterns: list = []
