"""URLs of namespace 'tokens' (mounted at account/tokens/ in registry_ui/urls.py)."""

from django.urls import path

from governance.tokens import views

app_name = "tokens"
urlpatterns = [
    path("", views.token_list, name="token_list"),
    path("new/", views.token_create, name="token_create"),
    path("<str:token_key>/revoke/", views.token_revoke, name="token_revoke"),
]
