"""Promotion pages: inbox, request list/detail, request and rollback forms, transition POSTs.

Thin: parse, call one service or selector, render. Errors are mapped by governance.errors.
"""

from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.access import can, visible_models
from governance.cards.panels import review_card
from governance.errors import KNOWN_ERRORS, NotFound, detail, http_status, raise_page_error
from governance.risk.panels import review_findings
from governance.validation import display as validation_display
from governance.validation import selectors as validation_selectors
from governance.workflow import services as workflow
from governance.workflow.filters import RequestFilterSet
from governance.workflow.forms import (
    NEW_ALIAS,
    BreakGlassForm,
    RecertifyForm,
    RequestForm,
    RequestListForm,
    RetentionForm,
    RollbackForm,
    TimeMachineForm,
    TransitionForm,
)
from governance.workflow.inbox import awaiting_my_action
from governance.workflow.models import RequestState
from governance.workflow.pickers import request_pickers
from governance.workflow.policies import STAGE_TARGETS
from governance.workflow.recertification import recertification_confirm, recertification_queue
from governance.workflow.review import review
from governance.workflow.timemachine import held_at
from registry_ui.client_ip import client_ip
from registry_ui.mirror.models import RegisteredModel


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    user = request.user
    to_approve, to_deploy = awaiting_my_action(user)
    mine = list(workflow.requests_visible_to(user).filter(requester=user)[:50])
    open_reviews = list(workflow.open_emergency_reviews(user)[:50])
    return render(request, "governance/inbox.html", {"to_approve": to_approve, "to_deploy": to_deploy, "mine": mine,
                                                     "open_reviews": open_reviews})


@login_required
@require_GET
def request_list(request: HttpRequest) -> HttpResponse:
    # The API's FilterSet: the same parameter names and meanings as GET /api/v1/requests/.
    qs = workflow.requests_visible_to(request.user)
    filters, paging = RequestFilterSet(request.GET, queryset=qs), RequestListForm(request.GET)
    # The less used filters fold away unless one of them is in use.
    more = any(value for key, value in request.GET.items() if key not in ("state", "q", "page"))
    if not (filters.is_valid() & paging.is_valid()):  # both checked, so every message shows at once
        return render(request, "governance/request_list.html", {
            "form": filters.form, "paging": paging, "page": Paginator(qs.none(), 50).get_page(1), "query": "",
            "more_filters": True}, status=400)
    page = Paginator(filters.qs, 50).get_page(paging.cleaned_data["page"] or 1)
    query = request.GET.copy()
    query.pop("page", None)  # the paging links keep every filter and set their own page
    return render(request, "governance/request_list.html", {"form": filters.form, "paging": paging, "page": page,
                                                            "query": query.urlencode(), "more_filters": more})


def _detail_context(request: HttpRequest, req, form=None, open_action: str = "") -> dict:
    """The review page: the request, its evidence read as a decision (review.py), the actions offered,
    the validation the policy requires. `open_action`: the dialog to show open again after a refused
    submit (with what was typed)."""
    r = review(request.user, req, workflow.request_history(req))
    for offer in r.offers:  # one form per dialog, ids suffixed so the labels stay unique on the page
        kept = form if form is not None and offer.name == open_action else None
        offer.form = kept or TransitionForm(auto_id=f"id_%s_{offer.name}", action=offer.name)
        if kept is not None:
            kept.auto_id = f"id_%s_{offer.name}"
    validation = validation_display.run_context(validation_selectors.run_for_request(request_id=req.pk,
                                                                                  evidence=r.evidence))
    may_validate = ("validation" in r.evidence and req.is_open and req.state != RequestState.DEPLOYING
                    and (can(request.user, "request", req.model) or can(request.user, "approve", req.model)))
    return {"req": req, "r": r, "form": form or TransitionForm(), "open_action": open_action,
            "approvals": list(req.approvals.all()), "evidence": r.evidence, "candidate": r.candidate,
            "incumbent": r.incumbent, "actions": [o.name for o in r.offers if o.allowed],
            "frozen_at_request": req.evidence, "validation": validation, "may_validate": may_validate,
            "findings": review_findings(request.user, req) | {"next": request.get_full_path()},
            "model_card": review_card(request.user, req)}


@login_required
@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        req = workflow.get_request_for(request.user, pk)
    except NotFound as exc:
        raise Http404(detail(exc)) from exc
    return render(request, "governance/request_detail.html", _detail_context(request, req))


RECERTIFICATION_PAGE = 100  # holders per page of the re-certification queue

TRANSITIONS = {
    "approve": workflow.promotion_request_approve,
    "reject": workflow.promotion_request_reject,
    "cancel": workflow.promotion_request_cancel,
    "deploy": workflow.promotion_request_deploy,
    "review": workflow.emergency_review_close,
}
DONE = {"approve": "Approved.", "reject": "Rejected.", "cancel": "Cancelled.", "deploy": "Deployed to MLflow.",
        "review": "Emergency review closed."}


@login_required
@require_POST
def request_transition(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    form = TransitionForm(request.POST, action=action)
    if not form.is_valid():
        # Nothing is attempted: the page comes back with the message under the comment and the text kept.
        try:
            req = workflow.get_request_for(request.user, pk)
        except NotFound as exc:
            raise Http404(detail(exc)) from exc
        return render(request, "governance/request_detail.html", _detail_context(request, req, form, action),
                      status=400)
    try:
        req = TRANSITIONS[action](request_id=pk, actor=request.user, source_ip=client_ip(request),
                                  **form.service_kwargs())
    except KNOWN_ERRORS as exc:
        raise_page_error(exc)
        messages.error(request, detail(exc))
        req = workflow.get_request_for(request.user, pk)
        return render(request, "governance/request_detail.html", _detail_context(request, req, form, action),
                      status=http_status(exc))
    messages.success(request, DONE[action])
    return redirect("governance:request_detail", pk=req.pk)


def _visible_model(user, name: str):
    return visible_models(user, RegisteredModel.objects.all()).filter(name=name).first()


def _target_choice(data) -> str:
    """The target picker's value for what was posted (a client may post target_kind + stage/alias)."""
    if data.get("target_choice"):
        return data["target_choice"]
    if data.get("target_kind") == "stage":
        return f"stage:{data.get('target_stage', '')}" if data.get("target_stage") else ""
    return NEW_ALIAS if data.get("target_kind") == "alias" else ""


def _pickers(request: HttpRequest, data) -> dict:
    return {"pickers": request_pickers(request.user, model_name=(data.get("model") or "").strip(),
                                       version=data.get("version"), target_choice=_target_choice(data),
                                       target_alias=data.get("target_alias") or "")}


@login_required
@require_http_methods(["GET", "POST"])
def request_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = RequestForm(request.POST)
        context = {"form": form, **_pickers(request, request.POST)}
        if form.is_valid():
            data = form.cleaned_data
            try:
                req = workflow.promotion_request_create(
                    actor=request.user, model_name=data["model"], version=data["version"], **form.target(),
                    archive_existing=data["archive_existing"], justification=data["justification"],
                    source_ip=client_ip(request))
            except KNOWN_ERRORS as exc:
                raise_page_error(exc)
                messages.error(request, detail(exc))
                return render(request, "governance/request_form.html", context, status=http_status(exc))
            messages.success(request, f"Request #{req.pk} created.")
            return redirect("governance:request_detail", pk=req.pk)
        return render(request, "governance/request_form.html", context, status=400)
    if request.htmx:
        # The pickers and the gates preview for what is chosen so far; an unknown model is said there.
        form = RequestForm(initial=request.GET.dict())
        response = render(request, "governance/_request_pickers.html", {"form": form, **_pickers(request, request.GET)})
        patch_vary_headers(response, ["HX-Request"])
        return response
    name = request.GET.get("model", "")
    model = _visible_model(request.user, name) if name else None
    if name and model is None:
        raise Http404("No such registered model.")
    if model is not None and not can(request.user, "request", model):
        raise PermissionDenied("You may not request promotions for this model.")
    target = request.GET.get("target", "")
    if not target and model is not None and model.aliases.filter(alias="champion").exists():
        target = "alias:champion"
    initial = {"model": name, "version": request.GET.get("version", ""), "target_choice": target}
    form = RequestForm(initial=initial)
    response = render(request, "governance/request_form.html", {"form": form, "model": model,
                                                               **_pickers(request, initial)})
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_http_methods(["GET", "POST"])
def request_rollback(request: HttpRequest) -> HttpResponse:
    if request.method == "GET" and (name := request.GET.get("model", "")):
        model = _visible_model(request.user, name)
        if model is None:
            raise Http404("No such registered model.")
        if not (can(request.user, "request", model) or can(request.user, "deploy", model)):
            raise PermissionDenied("You may not request a rollback for this model.")
    # Bound on every POST, even an empty one: an empty POST is invalid input, not a blank form.
    form = RollbackForm(request.POST if request.method == "POST" else None,
                        initial={"model": request.GET.get("model", ""),
                                 "target": request.GET.get("target", "alias:champion")})
    if request.method == "POST" and form.is_valid():
        try:
            req = workflow.promotion_request_rollback(
                actor=request.user, model_name=form.cleaned_data["model"], **form.target_kwargs(),
                justification=form.cleaned_data["justification"], urgent=form.cleaned_data["urgent"],
                source_ip=client_ip(request))
        except KNOWN_ERRORS as exc:
            raise_page_error(exc)
            messages.error(request, detail(exc))
            return render(request, "governance/rollback_form.html", {"form": form}, status=http_status(exc))
        messages.success(request, f"Rollback request #{req.pk} created (v{req.version}).")
        return redirect("governance:request_detail", pk=req.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "governance/rollback_form.html", {"form": form, "stages": STAGE_TARGETS}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def retention(request: HttpRequest) -> HttpResponse:
    """The model's retention batch as a dry run (from the mirror, for anyone who may see the model);
    POST proposes it as one request, from MLflow's state read then."""
    form = RetentionForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        return render(request, "governance/retention.html", {"form": form}, status=400)
    name = form.cleaned_data["model"]
    try:
        if request.method == "POST":
            req = workflow.retention_request_propose(model_name=name, actor=request.user,
                                                     source_ip=client_ip(request))
            if req is None:
                messages.info(request, "Nothing is due: no request was made.")
                return redirect(f"{request.path}?model={quote(name)}")
            messages.success(request, f"Retention batch #{req.pk} proposed ({len(req.plan)} versions).")
            return redirect("governance:request_detail", pk=req.pk)
        dry_run = workflow.retention_dry_run(user=request.user, model_name=name)
    except KNOWN_ERRORS as exc:
        raise_page_error(exc)
        messages.error(request, detail(exc))
        dry_run = workflow.retention_dry_run(user=request.user, model_name=name)
        return render(request, "governance/retention.html", {"form": form, **dry_run,
                                                              "may_propose": can(request.user, "request",
                                                                                 dry_run["model"])},
                      status=http_status(exc))
    return render(request, "governance/retention.html", {
        "form": form, **dry_run, "may_propose": can(request.user, "request", dry_run["model"])})


@login_required
@require_http_methods(["GET", "POST"])
def break_glass(request: HttpRequest) -> HttpResponse:
    """Break-glass: an ops user with the break-glass permission deploys or rolls back without approval."""
    if request.method == "GET":
        name = request.GET.get("model", "")
        model = _visible_model(request.user, name) if name else None
        if name and model is None:
            raise Http404("No such registered model.")
        if model is not None and not (can(request.user, "deploy", model) and can(request.user, "break_glass", model)):
            raise PermissionDenied("You may not break the glass for this model.")
        form = BreakGlassForm(initial={"model": name, "target": request.GET.get("target", "alias:champion")})
        return render(request, "governance/break_glass.html", {"form": form})
    form = BreakGlassForm(request.POST)
    if not form.is_valid():
        return render(request, "governance/break_glass.html", {"form": form}, status=400)
    data = form.cleaned_data
    try:
        req = workflow.promotion_request_break_glass(
            actor=request.user, model_name=data["model"], version=data["version"], rollback=data["rollback"],
            reason=data["reason"], source_ip=client_ip(request), **form.target_kwargs())
    except KNOWN_ERRORS as exc:
        raise_page_error(exc)
        messages.error(request, detail(exc))
        return render(request, "governance/break_glass.html", {"form": form}, status=http_status(exc))
    messages.warning(request, f"EMERGENCY deploy #{req.pk}: {req.state}. Approvers must review it by "
                              f"{req.review_due_at:%Y-%m-%d %H:%M} UTC.")
    return redirect("governance:request_detail", pk=req.pk)


@login_required
@require_GET
def time_machine(request: HttpRequest) -> HttpResponse:
    """What held a stage or alias of a model at a date-time, and who approved it (from the audit trail)."""
    form = TimeMachineForm(request.GET)
    if not form.is_valid():
        status = 400 if request.GET.get("at") else 200
        return render(request, "governance/time_machine.html", {"form": form, "answer": None}, status=status)
    try:
        answer = held_at(user=request.user, model_name=form.cleaned_data["model"], at=form.cleaned_data["at"],
                         **form.target_kwargs())
    except NotFound as exc:
        raise Http404(detail(exc)) from exc
    return render(request, "governance/time_machine.html", {"form": form, "answer": answer})


@login_required
@require_http_methods(["GET", "POST"])
def recertification(request: HttpRequest) -> HttpResponse:
    """The re-review queue: protected holders whose approval is older than the policy's validity; an
    approver re-certifies one with a comment (POST)."""
    form = RecertifyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                recertification_confirm(actor=request.user, source_ip=client_ip(request), **form.cleaned_data)
            except KNOWN_ERRORS as exc:
                raise_page_error(exc)
                messages.error(request, detail(exc))
                status = http_status(exc)
            else:
                messages.success(request, "Re-certified.")
                return redirect("governance:recertification")
        else:
            status = 400
    paging = RequestListForm(request.GET)
    if not paging.is_valid():
        return render(request, "governance/recertification.html", {
            "queue": [], "page": None, "paging": paging, "form": form}, status=400)
    # A page at a time, oldest first: at 10,000 models the queue may hold thousands of holders.
    page = Paginator(recertification_queue(request.user), RECERTIFICATION_PAGE).get_page(
        paging.cleaned_data["page"] or 1)
    may = workflow.approvable_model_names(request.user, [item["model"] for item in page.object_list])
    for item in page.object_list:
        item["may_confirm"] = item["model"] in may
    return render(request, "governance/recertification.html", {
        "queue": page.object_list, "page": page, "paging": paging, "form": form}, status=status)


@login_required
@require_POST
def request_validate(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-run the validation the policy requires (audited as validation.requested)."""
    try:
        run = workflow.promotion_request_validate(request_id=pk, actor=request.user, source_ip=client_ip(request))
    except KNOWN_ERRORS as exc:
        raise_page_error(exc)
        messages.error(request, detail(exc))
        req = workflow.get_request_for(request.user, pk)
        return render(request, "governance/request_detail.html", _detail_context(request, req),
                      status=http_status(exc))
    messages.success(request, f"Validation #{run.pk} queued.")
    return redirect("governance:request_detail", pk=pk)
