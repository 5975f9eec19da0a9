"""URL map. Each app keeps its own urls module; this file only mounts them."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from registry_ui import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]

handler403 = "registry_ui.views.error_403"
handler404 = "registry_ui.views.error_404"
handler500 = "registry_ui.views.error_500"
