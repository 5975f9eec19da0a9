"""URLs of namespace 'requests_api' (mounted in registry_ui/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "requests_api"
urlpatterns: list = []
