"""URLs of namespace 'hooks' (mounted in registry_ui/urls.py)."""

from django.urls import path

from registry_ui.mirror import webhooks

app_name = "hooks"
urlpatterns = [
    path("mlflow/", webhooks.mlflow_webhook, name="mlflow"),
]
