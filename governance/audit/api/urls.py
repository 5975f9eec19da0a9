"""URLs of namespace 'audit_api' (mounted in registry_ui/urls.py)."""

from django.urls import path

from governance.audit.api import views as audit_views

app_name = "audit_api"
urlpatterns = [
    path("", audit_views.AuditEventList.as_view(), name="event_list"),
    path("verify/", audit_views.AuditVerify.as_view(), name="verify"),
]
