"""URL map. Each area keeps its own urls module; this file only mounts them (and may name governance
modules: it is the composition root, see shared/CONVENTIONS.md)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from registry_ui import views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # registry mirror pages: catalogue, model, version, comparison, lineage
    path("registry/", include("registry_ui.pages.urls")),
    # MLflow webhooks
    path("hooks/", include("registry_ui.mirror.urls")),
    # REST API
    path("api/v1/compare/", include("registry_ui.api.compare_urls")),
    path("api/v1/requests/", include("governance.workflow.api.urls")),
    path("api/v1/audit/", include("governance.audit.api.urls")),
    path("api/v1/", include("registry_ui.api.urls")),
    # governance pages: inbox, requests; audit trail and reports
    path("governance/", include("governance.workflow.urls")),
    path("audit/", include("governance.audit.urls")),
]

handler403 = "registry_ui.views.error_403"
handler404 = "registry_ui.views.error_404"
handler500 = "registry_ui.views.error_500"
