"""URLs of namespace 'requests_api' (mounted in registry_ui/urls.py at api/v1/requests/)."""

from django.urls import path

from governance.workflow.api import views

app_name = "requests_api"
urlpatterns = [
    path("", views.RequestListCreate.as_view(), name="request_list"),
    path("<int:pk>/", views.RequestDetail.as_view(), name="request_detail"),
    path("break-glass/", views.BreakGlass.as_view(), name="break_glass"),
    path("held-at/", views.HeldAt.as_view(), name="held_at"),
    path("<int:pk>/approve/", views.RequestApprove.as_view(), name="request_approve"),
    path("<int:pk>/reject/", views.RequestReject.as_view(), name="request_reject"),
    path("<int:pk>/cancel/", views.RequestCancel.as_view(), name="request_cancel"),
    path("<int:pk>/deploy/", views.RequestDeploy.as_view(), name="request_deploy"),
    path("<int:pk>/review/", views.RequestReview.as_view(), name="request_review"),
]
