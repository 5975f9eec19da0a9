"""Sign-ins, failed sign-ins and sign-outs are audited from Django's auth signals: here the signal
IS the event (Django's login machinery has no service of ours to call record() from)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction

from governance import audit
from registry_ui.client_ip import client_ip


def _on_login(sender, request, user, **kwargs):
    with transaction.atomic():
        audit.record(actor=user, action="user.login", source_ip=client_ip(request))


def _on_logout(sender, request, user, **kwargs):
    if user is None:
        return
    # A sign-out the user did not ask for says why (governance.sso: the IdP refused a renewal).
    reason = str(getattr(request, "logout_reason", ""))
    with transaction.atomic():
        audit.record(actor=user, action="user.logout", source_ip=client_ip(request), comment=reason)


def _on_login_failed(sender, credentials, request=None, **kwargs):
    # `credentials` is already cleansed by Django (passwords masked); keep only the username tried.
    username = str((credentials or {}).get("username", ""))[:150]
    with transaction.atomic():
        # Never the typed name as actor: anyone could type "system:sync".
        audit.record(actor_name="anonymous", action="user.login_failed",
                     after={"username": username}, source_ip=client_ip(request),
                     comment=f"failed sign-in for {username!r}")


def connect() -> None:
    user_logged_in.connect(_on_login, dispatch_uid="governance.audit.login")
    user_logged_out.connect(_on_logout, dispatch_uid="governance.audit.logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="governance.audit.login_failed")
