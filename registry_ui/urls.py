"""URL map. Each area keeps its own urls module; this file only mounts them (and may name governance
modules: it is the composition root, see shared/CONVENTIONS.md)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from registry_ui import health, views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    # probes of load balancers and orchestrators: anonymous, JSON, no secrets
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # registry mirror pages: catalogue, model, version, comparison, lineage
    path("registry/", include("registry_ui.pages.urls")),
    # MLflow webhooks
    path("hooks/", include("registry_ui.mirror.urls")),
    # REST API: the OpenAPI schema and its readers, then the areas
    path("api/v1/", include("registry_ui.api.docs_urls")),
    path("api/v1/policies/", include("governance.workflow.api.policy_urls")),
    path("api/v1/compare/", include("registry_ui.api.compare_urls")),
    path("api/v1/requests/", include("governance.workflow.api.urls")),
    path("api/v1/audit/", include("governance.audit.api.urls")),
    path("api/v1/events/", include("governance.notify.api.urls")),
    path("api/v1/risk/", include("governance.risk.api.urls")),
    path("api/v1/", include("registry_ui.api.urls")),
    # governance pages: inbox, requests; audit trail and reports
    path("governance/", include("governance.workflow.urls")),
    path("governance/", include("governance.notify.urls")),
    path("audit/", include("governance.audit.urls")),
    # operations: periodic jobs, the task queue, "Sync now"
    path("operations/", include("governance.operations.urls")),
    # the user's API tokens
    path("account/tokens/", include("governance.tokens.urls")),
    # model risk: tier changes and findings; the portfolio view
    path("risk/", include("governance.risk.urls")),
    path("portfolio/", include("governance.portfolio.urls")),
    # model cards: view, edit (governed), decide, export as HTML and PDF
    path("cards/", include("governance.cards.urls")),
]

if settings.OIDC_ENABLED:
    # Single sign-on: sign-in and the IdP's callback (which also answers session renewals).
    urlpatterns += [path("oidc/", include("governance.sso.urls"))]

handler403 = "registry_ui.views.error_403"
handler404 = "registry_ui.views.error_404"
handler500 = "registry_ui.views.error_500"
