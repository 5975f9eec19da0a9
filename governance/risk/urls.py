"""URLs of namespace 'risk' (mounted in registry_ui/urls.py)."""

from django.urls import path, re_path

from governance.risk import views

app_name = "risk"
urlpatterns = [
    path("tier-changes/", views.tier_change_request, name="tier_change_request"),
    re_path(r"^tier-changes/(?P<pk>[0-9]+)/(?P<action>approve|reject)/$", views.tier_change_decide,
            name="tier_change_decide"),
    path("findings/", views.finding_raise, name="finding_raise"),
    re_path(r"^findings/(?P<pk>[0-9]+)/(?P<action>propose|accept|decline)/$", views.finding_transition,
            name="finding_transition"),
]
