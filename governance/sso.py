"""Single sign-on through OpenID Connect (mozilla-django-oidc): the identity provider says who the user is
and which groups they belong to; OIDC_GROUP_ROLE_MAP turns those groups into our roles. The account and
its role groups are written by governance.grants.user_sync_from_idp (audited, as `system:oidc`)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from governance import grants
from governance.access import ROLES
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

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        if not self.verify_claims(claims):
            return None
        return grants.user_sync_from_idp(
            username=str(claims[settings.OIDC_USERNAME_CLAIM])[:150], email=str(claims.get("email", ""))[:254],
            first_name=str(claims.get("given_name", ""))[:150], last_name=str(claims.get("family_name", ""))[:150],
            roles=roles_for(claims.get(settings.OIDC_GROUPS_CLAIM)),
            source_ip=client_ip(self.request) if self.request is not None else None)
