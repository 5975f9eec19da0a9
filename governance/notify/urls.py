"""URLs of namespace 'notify' (mounted in registry_ui/urls.py under governance/)."""

from django.urls import path

from governance.notify import views

app_name = "notify"
urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("profile/watch/", views.watch, name="watch"),
    path("webhooks/", views.subscription_list, name="subscription_list"),
    path("webhooks/<int:pk>/", views.subscription_edit, name="subscription_edit"),
    path("webhooks/<int:pk>/delete/", views.subscription_delete, name="subscription_delete"),
    path("webhooks/deliveries/", views.delivery_list, name="delivery_list"),
    path("webhooks/deliveries/<int:pk>/resend/", views.delivery_resend, name="delivery_resend"),
]
