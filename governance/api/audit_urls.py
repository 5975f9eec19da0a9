"""URLs of namespace 'audit_api' (mounted in registry_ui/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "audit_api"
urlpatterns: list = []
