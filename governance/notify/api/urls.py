"""URLs of namespace 'events_api' (mounted in registry_ui/urls.py at api/v1/events/)."""

from django.urls import path

from governance.notify.api.views import EventFeed

app_name = "events_api"
urlpatterns = [path("", EventFeed.as_view(), name="event_list")]
