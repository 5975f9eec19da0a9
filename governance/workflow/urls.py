"""URLs of namespace 'governance' (mounted in registry_ui/urls.py)."""

from django.urls import path

from governance.workflow import views

app_name = "governance"
urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_create, name="request_create"),
    path("requests/rollback/", views.request_rollback, name="request_rollback"),
    path("retention/", views.retention, name="retention"),
    path("requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/approve/", views.request_transition, {"action": "approve"}, name="request_approve"),
    path("requests/<int:pk>/reject/", views.request_transition, {"action": "reject"}, name="request_reject"),
    path("requests/<int:pk>/cancel/", views.request_transition, {"action": "cancel"}, name="request_cancel"),
    path("requests/<int:pk>/validate/", views.request_validate, name="request_validate"),
    path("requests/<int:pk>/deploy/", views.request_transition, {"action": "deploy"}, name="request_deploy"),
    path("requests/<int:pk>/review/", views.request_transition, {"action": "review"}, name="request_review"),
    path("break-glass/", views.break_glass, name="break_glass"),
    path("held-at/", views.time_machine, name="time_machine"),
    path("recertification/", views.recertification, name="recertification"),
]
