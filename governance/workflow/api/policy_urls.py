"""URLs of namespace 'policies_api' (mounted in registry_ui/urls.py at api/v1/policies/)."""

from django.urls import path

from governance.workflow.api import views

app_name = "policies_api"
urlpatterns = [path("<str:name>/", views.PolicyDetail.as_view(), name="policy_detail")]
