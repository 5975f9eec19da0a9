"""The Operations page and its two sync buttons. Thin: check the role, call a selector or the service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from governance.access import is_operator
from governance.errors import NotFound, detail
from governance.operations import selectors, services
from governance.operations.forms import SyncModelForm
from registry_ui.client_ip import client_ip


def _require_operator(request: HttpRequest) -> None:
    if not is_operator(request.user):
        raise PermissionDenied("The Operations page is for ops and administrators.")


@login_required
@require_GET
@vary_on_headers("HX-Request")
def dashboard(request: HttpRequest) -> HttpResponse:
    _require_operator(request)
    context = {"jobs": selectors.jobs(), "queue": selectors.queue_depth(), "failures": selectors.recent_failures(),
               "ages": selectors.mirror_ages(), "nodes": selectors.nodes()}
    template = "operations/_live.html" if request.htmx else "operations/dashboard.html"
    return render(request, template, context)


def _sync(request: HttpRequest, *, model_name: str | None, back: str) -> HttpResponse:
    _require_operator(request)
    try:
        task_id = services.mirror_sync_request(actor=request.user, model_name=model_name,
                                               source_ip=client_ip(request))
    except NotFound as exc:
        raise Http404(detail(exc)) from exc
    status = selectors.task_status(task_id)
    if request.htmx:
        return render(request, "operations/_task_status.html", {"status": status})
    messages.success(request, "Sync enqueued: the worker will run it shortly.")
    return redirect(back)


@login_required
@require_POST
def sync_now(request: HttpRequest) -> HttpResponse:
    return _sync(request, model_name=None, back=reverse("operations:dashboard"))


@login_required
@require_POST
def sync_model(request: HttpRequest) -> HttpResponse:
    _require_operator(request)
    form = SyncModelForm(request.POST)
    if not form.is_valid():
        return HttpResponse(f"Cannot sync: {' '.join(e for errs in form.errors.values() for e in errs)}",
                            status=400, content_type="text/plain; charset=utf-8")
    name = form.cleaned_data["model"]
    return _sync(request, model_name=name, back=reverse("registry:model_detail", kwargs={"name": name}))


@login_required
@require_GET
def task_status(request: HttpRequest, task_id) -> HttpResponse:
    _require_operator(request)
    status = selectors.task_status(str(task_id))
    if status is None:
        raise Http404("No such task.")
    response = render(request, "operations/_task_status.html", {"status": status})
    if request.htmx and status.finished:
        # Done: reload the page the button is on, so what it shows is the mirror after the sync.
        (messages.success if status.status == "SUCCESSFUL" else messages.error)(
            request, f"Sync {'done' if status.status == 'SUCCESSFUL' else 'failed'}: {status.detail}")
        response["HX-Refresh"] = "true"
    return response
