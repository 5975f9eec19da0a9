"""URLs of namespace 'requests_api' (mounted in registry_ui/urls.py at api/v1/requests/)."""

from django.urls import path

from governance.workflow.api.views import BreakGlass, HeldAt, RequestDetail, RequestListCreate, RequestTransition

app_name = "requests_api"
urlpatterns = [
    path("", RequestListCreate.as_view(), name="request_list"),
    path("<int:pk>/", RequestDetail.as_view(), name="request_detail"),
    path("break-glass/", BreakGlass.as_view(), name="break_glass"),
    path("held-at/", HeldAt.as_view(), name="held_at"),
] + [
    path(f"<int:pk>/{action}/", RequestTransition.as_view(action_name=action), name=f"request_{action}")
    for action in ("approve", "reject", "cancel", "deploy", "review")
]
