"""URLs of namespace 'hooks' (mounted in registry_ui/urls.py)."""

from django.urls import path  # noqa: F401

app_name = "hooks"
urlpatterns: list = []
