"""The single sign-on endpoints, mounted under /oidc/ when OIDC is on. /authenticate/ sends to the IdP,
/callback/ is where it sends back (after a sign-in or a renewal). No /logout/: mozilla-django-oidc's
accepts GET (a cross-site page could sign users out); the console's own POST logout ends the session."""

from django.urls import path
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from governance.sso import RenewingCallbackView

# Names without a namespace: mozilla-django-oidc reverses them by these names.
urlpatterns = [
    path("authenticate/", OIDCAuthenticationRequestView.as_view(), name="oidc_authentication_init"),
    path("callback/", RenewingCallbackView.as_view(), name="oidc_authentication_callback"),
]
