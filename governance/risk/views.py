"""Pages' POST endpoints of model risk: parse the form, call one service, go back to the page it came
from. A refusal renders a page with the reason and its status (400/403/409); nothing is changed."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from governance.errors import KNOWN_ERRORS, NotFound, detail, http_status
from governance.risk import services
from governance.risk.forms import DecisionForm, FindingForm, FindingNoteForm, TierChangeForm
from registry_ui.client_ip import client_ip


def _back(request: HttpRequest, fallback: str) -> str:
    nxt = request.POST.get("next", "")
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=False):
        return nxt
    return fallback


def _refused(request: HttpRequest, message: str, status: int, back: str) -> HttpResponse:
    return render(request, "risk/refused.html", {"message": message, "back": back}, status=status)


def _form_errors(form) -> str:
    return " ".join(" ".join(str(e) for e in errors) for errors in form.errors.values())


def _run(request: HttpRequest, call, done: str, back: str) -> HttpResponse:
    try:
        call()
    except NotFound as exc:
        raise Http404(detail(exc)) from exc
    except KNOWN_ERRORS as exc:
        return _refused(request, detail(exc), http_status(exc), back)
    messages.success(request, done)
    return redirect(back)


def _model_page(name: str) -> str:
    return reverse("registry:model_detail", args=[name]) if name else reverse("registry:catalogue")


@login_required
@require_POST
def tier_change_request(request: HttpRequest) -> HttpResponse:
    form = TierChangeForm(request.POST)
    back = _back(request, _model_page(request.POST.get("model", "")))
    if not form.is_valid():
        return _refused(request, _form_errors(form), 400, back)
    data = form.cleaned_data
    return _run(request, lambda: services.tier_change_request(
        actor=request.user, model_name=data["model"], tier=data["tier"], reason=data["reason"],
        source_ip=client_ip(request)), "Tier change requested: a second approver decides it.", back)


@login_required
@require_POST
def tier_change_decide(request: HttpRequest, pk: str, action: str) -> HttpResponse:
    form = DecisionForm(request.POST)
    back = _back(request, reverse("registry:catalogue"))
    if not form.is_valid():
        return _refused(request, _form_errors(form), 400, back)
    service = {"approve": services.tier_change_approve, "reject": services.tier_change_reject}[action]
    return _run(request, lambda: service(actor=request.user, change_id=int(pk), comment=form.cleaned_data["comment"],
                                         source_ip=client_ip(request)),
                "Tier change approved." if action == "approve" else "Tier change rejected.", back)


@login_required
@require_POST
def finding_raise(request: HttpRequest) -> HttpResponse:
    form = FindingForm(request.POST)
    back = _back(request, _model_page(request.POST.get("model", "")))
    if not form.is_valid():
        return _refused(request, _form_errors(form), 400, back)
    data = form.cleaned_data
    return _run(request, lambda: services.finding_raise(
        actor=request.user, model_name=data["model"], version=data["version"], severity=data["severity"],
        description=data["description"], owner_username=data["owner"], due_date=data["due_date"],
        source_ip=client_ip(request)), "Finding raised.", back)


FINDING_STEPS = {
    "propose": (services.finding_propose_closure, "note", "Closure proposed: another approver accepts it."),
    "accept": (services.finding_accept_closure, "comment", "Finding closed."),
    "decline": (services.finding_decline_closure, "comment", "Closure declined: the finding is open again."),
}


@login_required
@require_POST
def finding_transition(request: HttpRequest, pk: str, action: str) -> HttpResponse:
    form = FindingNoteForm(request.POST)
    back = _back(request, reverse("registry:catalogue"))
    if not form.is_valid():
        return _refused(request, _form_errors(form), 400, back)
    service, arg, done = FINDING_STEPS[action]
    return _run(request, lambda: service(actor=request.user, finding_id=int(pk), **{arg: form.cleaned_data["note"]},
                                         source_ip=client_ip(request)), done, back)
