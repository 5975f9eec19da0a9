"""The Tokens page: a user lists their API tokens, creates one (the secret is shown once, on the answer
to the POST, never again) and revokes one. Thin: parse, call one service, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from governance.errors import KNOWN_ERRORS, detail
from governance.tokens import services
from governance.tokens.forms import TokenForm
from registry_ui.client_ip import client_ip


def _page(request, form, *, secret: str = "", status: int = 200):
    return render(request, "governance/tokens.html",
                  {"form": form, "tokens": services.tokens_of(request.user), "secret": secret}, status=status)


@require_GET
@login_required
@never_cache
def token_list(request):
    return _page(request, TokenForm())


@require_POST
@login_required
@never_cache
def token_create(request):
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        _token, secret = services.api_token_create(actor=request.user, name=form.cleaned_data["name"],
                                                   scope=form.cleaned_data["scope"],
                                                   ttl_days=form.cleaned_data["ttl_days"], source_ip=client_ip(request))
    except KNOWN_ERRORS as exc:
        form.add_error(None, detail(exc))
        return _page(request, form, status=400)
    # Rendered, not redirected: the one time the secret is shown (never_cache keeps it out of caches).
    return _page(request, TokenForm(), secret=secret, status=201)


@require_POST
@login_required
def token_revoke(request, token_key: str):
    try:
        services.api_token_revoke(actor=request.user, token_key=token_key, source_ip=client_ip(request))
    except KNOWN_ERRORS as exc:
        messages.error(request, detail(exc))
        return redirect("tokens:token_list")
    messages.success(request, "Token revoked: it no longer works.")
    return redirect("tokens:token_list")
