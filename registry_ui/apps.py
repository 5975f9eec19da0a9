from django.apps import AppConfig


class RegistryUiConfig(AppConfig):
    """The Django project itself plus the read-only mirror of the MLflow registry."""

    name = "registry_ui"
    verbose_name = "Registry mirror"
