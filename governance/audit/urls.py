"""URLs of namespace 'audit' (mounted in registry_ui/urls.py)."""

from django.urls import path

from governance.audit import views as audit_views

app_name = "audit"
urlpatterns = [
    path("", audit_views.search, name="search"),
    path("export/", audit_views.export, name="export"),
    path("verify/", audit_views.verify, name="verify"),
    path("reports/", audit_views.report_index, name="report_index"),
    path("reports/checkpoint/", audit_views.checkpoint_download, name="checkpoint_download"),
    path("reports/model/<path:name>/", audit_views.model_report, name="model_report"),
]
