"""URLs of namespace 'api_docs' (mounted at api/v1/ in registry_ui/urls.py): the OpenAPI schema and the
two readers of it, Swagger UI and ReDoc, served from drf-spectacular-sidecar's static files (no CDN; the
Swagger UI start-up script is a separate same-origin file, so CSP keeps script-src 'self').

Open to everyone: the schema describes endpoints, never data."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

app_name = "api_docs"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]),
         name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api_docs:schema", permission_classes=[AllowAny]),
         name="swagger"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api_docs:schema", permission_classes=[AllowAny]),
         name="redoc"),
]
