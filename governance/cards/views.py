"""Card pages: view, edit (preview shows the diff; save calls the one service), decide a proposed edit,
write to MLflow again, export. Thin: parse, call one service or selector, render. A refusal renders the
edit page (or the refusal page) with the reason and its status; nothing is changed."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.cards import export, prefill, selectors, services, text
from governance.cards.forms import CardForm, DecisionForm
from governance.cards.models import CardRevision
from governance.cards.panels import card_view
from governance.errors import KNOWN_ERRORS, NotFound, detail, http_status, raise_page_error
from registry_ui.client_ip import client_ip
from registry_ui.pages import selectors as pages


def _refused(request: HttpRequest, message: str, status: int, back: str) -> HttpResponse:
    return render(request, "risk/refused.html", {"message": message, "back": back}, status=status)


@login_required
@require_GET
def card_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    view = card_view(request.user, pages.version_for_user(request.user, name, version))
    return render(request, "cards/card_detail.html", view | {"next": request.get_full_path()})


def _initial(request, view: dict) -> dict:
    """A card in force: its text. A new card, or ?prefill=1: the evidence the console holds."""
    data = {f"s_{s['key']}": s["body"] for s in view["sections"]}
    if view["current"] is None or request.GET.get("prefill") == "1":
        evidence = prefill.evidence_sections(request.user, view["model"].name, view["version"])
        data.update({f"s_{k}": v for k, v in evidence.items() if f"s_{k}" in data})
    data["base_revision"] = view["current"].pk if view["current"] else None
    return data


@login_required
@require_http_methods(["GET", "POST"])
def card_edit(request: HttpRequest, name: str, version: int) -> HttpResponse:
    view = card_view(request.user, pages.version_for_user(request.user, name, version))
    if not services.may_edit(request.user, view["model"]):
        raise PermissionDenied(f"You may not edit the model cards of {view['model'].name}.")
    layout = [{k: s[k] for k in ("key", "title", "required", "guidance")} for s in view["sections"]]
    context = view | {"diff": None, "error": ""}
    if request.method == "GET":
        context["form"] = CardForm(initial=_initial(request, view), sections=layout)
        return render(request, "cards/card_edit.html", context)
    form = CardForm(request.POST, sections=layout)
    context["form"] = form
    if not form.is_valid():
        context["error"] = " ".join(" ".join(str(e) for e in errs) for errs in form.errors.values())
        return render(request, "cards/card_edit.html", context, status=400)
    heading = f"Model card: {name} v{version}"
    proposed = [{"key": s["key"], "title": s["title"], "body": form.sections()[s["key"]].strip()} for s in layout]
    context["diff"] = text.diff_lines(text.document(view["current"].sections, heading=heading)
                                      if view["current"] else "", text.document(proposed, heading=heading))
    if request.POST.get("action") != "save":
        return render(request, "cards/card_edit.html", context)
    try:
        rev = services.card_edit(actor=request.user, model_name=name, version=version, sections=form.sections(),
                                 base_revision=form.cleaned_data["base_revision"],
                                 comment=form.cleaned_data["comment"], source_ip=client_ip(request))
    except KNOWN_ERRORS as exc:
        raise_page_error(exc)
        context["error"] = detail(exc)
        return render(request, "cards/card_edit.html", context, status=http_status(exc))
    if rev.state == "pending":
        messages.success(request, f"Revision {rev.number} proposed: an approver other than you decides it.")
    elif rev.publish_state == "written":
        messages.success(request, f"Revision {rev.number} saved and written to MLflow.")
    else:
        messages.warning(request, f"Revision {rev.number} saved; not yet in MLflow: {rev.publish_error}")
    return redirect(selectors.card_url(name, version))


@login_required
@require_POST
def card_decide(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    rev = CardRevision.objects.select_related("card__model").filter(pk=pk).first()
    back = selectors.card_url(rev.card.model.name, rev.card.version) if rev else "/"
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _refused(request, "The comment is too long.", 400, back)
    service = {"approve": services.card_revision_approve, "reject": services.card_revision_reject}[action]
    try:
        done = service(actor=request.user, revision_id=int(pk), comment=form.cleaned_data["comment"],
                       source_ip=client_ip(request))
    except NotFound as exc:
        raise Http404(detail(exc)) from exc
    except KNOWN_ERRORS as exc:
        return _refused(request, detail(exc), http_status(exc), back)
    if action == "reject":
        messages.success(request, f"Revision {done.number} rejected.")
    elif done.publish_state == "written":
        messages.success(request, f"Revision {done.number} approved and written to MLflow.")
    else:
        messages.warning(request, f"Revision {done.number} approved; not yet in MLflow: {done.publish_error}")
    return redirect(back)


@login_required
@require_POST
def card_publish(request: HttpRequest, name: str, version: int) -> HttpResponse:
    back = selectors.card_url(name, version)
    try:
        state = services.card_publish_again(actor=request.user, model_name=name, version=version)
    except NotFound as exc:
        raise Http404(detail(exc)) from exc
    except KNOWN_ERRORS as exc:
        return _refused(request, detail(exc), http_status(exc), back)
    (messages.success if state == "written" else messages.warning)(request, f"MLflow: {state}.")
    return redirect(back)


@login_required
@require_GET
def card_export(request: HttpRequest, name: str, version: int, fmt: str) -> HttpResponse:
    if fmt not in ("html", "pdf"):
        raise Http404("A card exports as card.html or card.pdf.")
    view = card_view(request.user, pages.version_for_user(request.user, name, version))
    if view["current"] is None:
        raise Http404(f"{name} v{version} has no approved model card yet.")
    filename = f"model-card-{version}.{fmt}"
    if fmt == "pdf":
        response = HttpResponse(export.pdf_document(view), content_type="application/pdf")
    else:
        response = HttpResponse(export.html_document(view), content_type="text/html; charset=utf-8")
    response["Content-Disposition"] = f'{"attachment" if fmt == "pdf" else "inline"}; filename="{filename}"'
    return response
