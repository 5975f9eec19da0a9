"""URLs of namespace 'risk_api' (mounted in registry_ui/urls.py at api/v1/risk/)."""

from django.urls import path

from governance.risk.api import views

app_name = "risk_api"
urlpatterns = [
    path("tiers/", views.TierList.as_view(), name="tier_list"),
    path("tiers/<str:name>/", views.TierDetail.as_view(), name="tier_detail"),
    path("tier-changes/", views.TierChangeRequest.as_view(), name="tier_change_request"),
    path("tier-changes/<int:pk>/approve/", views.TierChangeApprove.as_view(), name="tier_change_approve"),
    path("tier-changes/<int:pk>/reject/", views.TierChangeReject.as_view(), name="tier_change_reject"),
    path("findings/", views.FindingListRaise.as_view(), name="finding_list"),
    path("findings/<int:pk>/", views.FindingDetail.as_view(), name="finding_detail"),
    path("findings/<int:pk>/propose-closure/", views.FindingPropose.as_view(), name="finding_propose"),
    path("findings/<int:pk>/accept-closure/", views.FindingAccept.as_view(), name="finding_accept"),
    path("findings/<int:pk>/decline-closure/", views.FindingDecline.as_view(), name="finding_decline"),
]
