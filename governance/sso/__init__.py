"""Single sign-on through OpenID Connect (mozilla-django-oidc): the identity provider says who the user is
and which groups they belong to; OIDC_GROUP_ROLE_MAP turns those groups into our roles. The account and
its role groups are written by governance.grants.user_sync_from_idp (audited, as `system:oidc`). The
session is re-checked with the IdP every OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS (SessionRenewal)."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY
from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.middleware import SessionRefresh
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView

from governance import grants
from governance.access import ROLES
from governance.errors import error_body
from registry_ui.client_ip import client_ip


def roles_for(groups) -> set[str]:
    mapping = settings.OIDC_GROUP_ROLE_MAP
    if isinstance(groups, str):
        groups = [groups]
    return {mapping[g] for g in (groups or []) if isinstance(g, str) and g in mapping}


class RoleMappingOIDCBackend(OIDCAuthenticationBackend):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        unknown = sorted(set(settings.OIDC_GROUP_ROLE_MAP.values()) - set(ROLES))
        if unknown:
            raise ImproperlyConfigured(f"OIDC_GROUP_ROLE_MAP names unknown roles: {', '.join(unknown)} "
                                       f"(roles: {', '.join(ROLES)}).")

    def verify_claims(self, claims) -> bool:
        return bool(claims.get(settings.OIDC_USERNAME_CLAIM))

    def get_user(self, user_id):
        # mozilla-django-oidc's returns inactive users too: an account deactivated here would keep its
        # session (ModelBackend refuses them the same way).
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        if not self.verify_claims(claims):
            return None
        return grants.user_sync_from_idp(
            username=str(claims[settings.OIDC_USERNAME_CLAIM])[:150], email=str(claims.get("email", ""))[:254],
            first_name=str(claims.get("given_name", ""))[:150], last_name=str(claims.get("family_name", ""))[:150],
            roles=roles_for(claims.get(settings.OIDC_GROUPS_CLAIM)),
            source_ip=client_ip(self.request) if self.request is not None else None)


def established_by_idp(request) -> bool:
    """Whether the request's session was signed in through the IdP (not with a local password)."""
    backend = request.session.get(BACKEND_SESSION_KEY)
    return bool(request.user.is_authenticated and backend
                and issubclass(import_string(backend), OIDCAuthenticationBackend))


class _LiveSetting:
    """A setting SessionRefresh reads per request rather than once at start-up (it assigns them in
    __init__; the assignment is ignored), so override_settings reaches a running server's middleware."""

    def __init__(self, name: str, default=None):
        self.name, self.default = name, default

    def __get__(self, obj, owner=None):
        return getattr(settings, self.name, self.default)

    def __set__(self, obj, value) -> None:
        pass


class SessionRenewal(SessionRefresh):
    """Re-asks the IdP (prompt=none) once OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS have passed since a sign-in
    or the last renewal, on the next page GET of a session the IdP established: a person deactivated,
    removed or moved at the IdP loses the console (or the role) within that interval, not at the end of
    the session. The callback (RenewingCallbackView) signs out on refusal and re-maps roles on success.

    Never for sessions of local accounts (their backend is not ours), nor for htmx requests (a redirect
    to the IdP cannot be followed by a fragment fetch: the next page GET renews), nor for
    OIDC_EXEMPT_URLS (the API, probes, webhooks, static files). SessionRefresh only looks at GETs: a
    redirect would drop a POST's body; a write of an IdP session whose renewal is due is refused (403,
    nothing changed) until a page load renewed it."""

    OIDC_EXEMPT_URLS = _LiveSetting("OIDC_EXEMPT_URLS", [])
    OIDC_OP_AUTHORIZATION_ENDPOINT = _LiveSetting("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_RP_CLIENT_ID = _LiveSetting("OIDC_RP_CLIENT_ID")
    OIDC_RP_SCOPES = _LiveSetting("OIDC_RP_SCOPES", "openid email")

    @cached_property
    def exempt_urls(self):
        # SessionRefresh also reverses "oidc_logout", which the console does not mount (see urls.py).
        names = [u for u in self.OIDC_EXEMPT_URLS if isinstance(u, str)]
        names += ["oidc_authentication_init", "oidc_authentication_callback"]
        return {u if u.startswith("/") else reverse(u) for u in names}

    def is_refreshable_url(self, request) -> bool:
        if not established_by_idp(request):
            return False  # SessionRefresh treats a session without a backend as its own
        if request.headers.get("HX-Request") == "true":
            return False
        return super().is_refreshable_url(request)

    def process_request(self, request):
        if request.method not in SAFE_METHODS and self._renewal_overdue(request):
            # A write cannot be sent to the IdP and replayed (the redirect drops its body), and letting it
            # through would let someone the IdP may no longer know approve or deploy: refuse it, change
            # nothing; the page load the message asks for renews the session.
            return _renewal_required(request)
        return super().process_request(request)

    def _renewal_overdue(self, request) -> bool:
        return (established_by_idp(request) and request.path not in self.exempt_urls
                and request.path != reverse("logout")
                and request.session.get("oidc_id_token_expiration", 0) <= time.time())


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
RENEWAL_REQUIRED = ("Your single sign-on must be renewed with the identity provider before you change anything; "
                    "nothing was changed. Load a page of the console (that renews it), then try again.")


def _renewal_required(request):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(RENEWAL_REQUIRED, "sso_renewal_required"), status=403)
    again = request.headers.get("Referer") or "/"
    if not url_has_allowed_host_and_scheme(again, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        again = "/"
    return render(request, "sso/renewal_required.html", {"again": again}, status=403)


class RenewingCallbackView(OIDCAuthenticationCallbackView):
    """The IdP's answer, to a sign-in or to a renewal. A renewal that fails ends the console session:
    the IdP's refusal (`login_required`: the person is deactivated or signed out there) SessionRefresh's
    callback already signs out; any other failure (claims refused, account deactivated here) would leave
    the user signed in with the renewal still due, sent back to the IdP on every page. The sign-out is
    audited as `user.logout`, its comment saying why. A renewal that succeeds ran the backend, which
    re-mapped the roles."""

    renewing = False

    def get(self, request):
        self.renewing = established_by_idp(request)
        if self.renewing:
            error = request.GET.get("error")
            request.logout_reason = (f"the identity provider refused to renew the session ({error[:64]})"
                                     if error else "single sign-on renewal failed")
        return super().get(request)

    def login_failure(self):
        if self.renewing and self.request.user.is_authenticated:
            auth.logout(self.request)
        return super().login_failure()
