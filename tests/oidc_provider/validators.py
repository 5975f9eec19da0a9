"""The provider's claims: who the user is and the names of their groups (the `groups` claim)."""

from oauth2_provider.oauth2_validators import OAuth2Validator


class GroupsClaimValidator(OAuth2Validator):
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "groups": "profile"}

    def get_additional_claims(self, request):
        user = request.user
        return {"preferred_username": user.username, "email": user.email, "given_name": user.first_name,
                "family_name": user.last_name, "groups": sorted(g.name for g in user.groups.all())}

    # prompt=none (the console's silent session renewal). django-oauth-toolkit answers login_required
    # itself when nobody is signed in here, or the account was deactivated (AuthorizationView.
    # handle_no_permission), and leaves these two to the validator (oauthlib's defaults raise): signed in
    # is enough to log in silently, and the console's client never asks for consent (skip_authorization).
    def validate_silent_login(self, request) -> bool:
        return True

    def validate_silent_authorization(self, request) -> bool:
        return True
