"""Pages of notify: my profile (mail preferences, watched models), and, for administrators, the
outbound webhook subscriptions and their delivery log. Thin: parse, call one service or selector."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.errors import KNOWN_ERRORS, detail, http_status, raise_page_error
from governance.notify import selectors, services
from governance.notify.forms import PreferencesForm, SubscriptionEditForm, SubscriptionForm, WatchForm
from governance.notify.models import MailKind, OutboxState, Subscription
from registry_ui.client_ip import client_ip


def _require_admin(request: HttpRequest) -> None:
    if not services.may_manage_webhooks(request.user):
        raise PermissionDenied("Only administrators manage outbound webhooks.")



@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            services.mail_preferences_set(actor=request.user, muted=form.muted())
            messages.success(request, "Mail preferences saved.")
            return redirect("notify:profile")
        status = 400
    else:
        muted = selectors.profile(request.user)["muted"]
        form = PreferencesForm(initial={"enabled": [k for k in MailKind.values if k not in muted]})
    return render(request, "notify/profile.html", {"form": form, **selectors.profile(request.user),
                                                   "watch_form": WatchForm()}, status=status)


@login_required
@require_POST
def watch(request: HttpRequest) -> HttpResponse:
    form = WatchForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name a model and whether to watch it.")
        return redirect("notify:profile")
    try:
        watching = services.model_watch_set(actor=request.user, model_name=form.cleaned_data["model"],
                                            watch=form.cleaned_data["watch"])
    except KNOWN_ERRORS as exc:
        raise_page_error(exc)
        raise
    messages.success(request, f"{'Watching' if watching else 'No longer watching'} {form.cleaned_data['model']}.")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                require_https=request.is_secure()):
        return redirect(back)
    return redirect("notify:profile")


@login_required
@require_http_methods(["GET", "POST"])
def subscription_list(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    form = SubscriptionForm(request.POST or None, initial={"active": True})
    status, created = 200, None
    if request.method == "POST":
        if form.is_valid():
            try:
                created = services.subscription_create(actor=request.user, **form.values(),
                                                       source_ip=client_ip(request))
            except KNOWN_ERRORS as exc:
                raise_page_error(exc)
                form.add_error(None, detail(exc))
                status = http_status(exc)
            else:
                form = SubscriptionForm(initial={"active": True})
        else:
            status = 400
    # The secret is shown on this response only (no redirect): it is not displayed anywhere again.
    return render(request, "notify/subscriptions.html", {
        "form": form, "subscriptions": selectors.subscriptions(), "created": created}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    sub = Subscription.objects.filter(pk=pk).first()
    if sub is None:
        raise Http404("No such subscription.")
    status, rotated = 200, None
    if request.method == "POST":
        form = SubscriptionEditForm(request.POST)
        if form.is_valid():
            try:
                sub = services.subscription_update(actor=request.user, subscription_id=pk, changes=form.values(),
                                                   rotate_secret=form.cleaned_data["rotate_secret"],
                                                   source_ip=client_ip(request))
            except KNOWN_ERRORS as exc:
                raise_page_error(exc)
                form.add_error(None, detail(exc))
                status = http_status(exc)
            else:
                if not form.cleaned_data["rotate_secret"]:
                    messages.success(request, "Subscription saved.")
                    return redirect("notify:subscription_list")
                rotated = sub
        else:
            status = 400
    else:
        form = SubscriptionEditForm(initial={k: getattr(sub, k) for k in services.SUBSCRIPTION_FIELDS})
    return render(request, "notify/subscription_edit.html", {"form": form, "sub": sub, "rotated": rotated},
                  status=status)


@login_required
@require_POST
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    try:
        services.subscription_delete(actor=request.user, subscription_id=pk, source_ip=client_ip(request))
    except KNOWN_ERRORS as exc:
        raise_page_error(exc)
        raise
    messages.success(request, "Subscription deleted.")
    return redirect("notify:subscription_list")


@login_required
@require_GET
def delivery_list(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    state = request.GET.get("state", "")
    if state and state not in OutboxState.values:
        return render(request, "notify/deliveries.html", {"deliveries": [], "state": "", "states": OutboxState.values,
                                                          "error": "Unknown state."}, status=400)
    return render(request, "notify/deliveries.html", {"deliveries": selectors.deliveries_page(state=state),
                                                      "state": state, "states": OutboxState.values})


@login_required
@require_POST
def delivery_resend(request: HttpRequest, pk: int) -> HttpResponse:
    _require_admin(request)
    try:
        services.delivery_resend(actor=request.user, delivery_id=pk, source_ip=client_ip(request))
    except KNOWN_ERRORS as exc:
        raise_page_error(exc)
        messages.error(request, detail(exc))
        return redirect("notify:delivery_list")
    messages.success(request, "Queued to be sent again (same webhook-id).")
    return redirect("notify:delivery_list")
