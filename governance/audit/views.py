"""Pages of the audit trail: search, export, auditor reports, checkpoint download. All read-only
(GET only: an auditor, or anyone, cannot change anything here)."""

from __future__ import annotations

import csv
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from governance import audit
from governance.audit import checkpoints
from governance.audit import search as audit_selectors
from governance.audit import services as audit_service
from governance.audit.forms import AuditExportForm, AuditSearchForm, ReportForm, ReportIndexForm
from governance.audit.models import AuditVerification
from governance.audit.reading import report_summary
from governance.audit.search import AuditFilters
from registry_ui.client_ip import client_ip
from registry_ui.memo import once_per_page
from registry_ui.validation import form_errors


@login_required
@require_GET
def search(request):
    form = AuditSearchForm(request.GET)
    context = {"form": form, "actions": sorted(audit.ACTIONS),
               "sees_everything": audit_selectors.sees_everything(request.user),
               "last_verification": AuditVerification.objects.first()}
    if not form.is_valid():
        # No search runs: results under a filter the page could not read would answer another question.
        return render(request, "audit/search.html", {**context, "events": [], "export_query": ""}, status=400)
    filters, before = form.filters(), form.cleaned_data["before"]
    events, next_before = audit_selectors.search_page(request.user, filters, before=before,
                                                      limit=settings.AUDIT_PAGE_SIZE)
    params = filters.as_params()
    return render(request, "audit/search.html", {
        **context,
        "filters": filters,
        "events": events,
        "next_url": f"?{urlencode({**params, 'before': next_before})}" if next_before else "",
        "first_url": f"?{urlencode(params)}" if before else "",
        "export_query": urlencode(params),
    })


def _error_text(form) -> str:
    return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in form_errors(form).items())


def _bad_request(form) -> HttpResponse:
    return HttpResponse(_error_text(form), status=400, content_type="text/plain; charset=utf-8")


@login_required
@require_GET
def export(request):
    form = AuditExportForm(request.GET)
    if not form.is_valid():
        return _bad_request(form)
    fmt, filters = form.cleaned_data["format"] or "csv", form.filters()
    upto_seq, _ = audit.chain_head()
    audit_service.audit_export_record(actor=request.user, fmt=fmt, filters=filters.as_params(), upto_seq=upto_seq,
                                      source_ip=client_ip(request))
    chunks = audit_selectors.iter_events(request.user, filters, upto_seq=upto_seq, chunk=settings.AUDIT_EXPORT_CHUNK)
    if fmt == "csv":
        response = StreamingHttpResponse(audit_selectors.csv_stream(chunks), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(audit_selectors.json_stream(chunks), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit-events-upto-{upto_seq}.{fmt}"'
    return response


def _visible_model_names(user, names):
    everything = audit_selectors.visible_model_names(user)
    return names if everything is None else [n for n in names if n in set(everything)]


@login_required
@require_GET
def report_index(request):
    form = ReportIndexForm(request.GET)
    if not form.is_valid():
        return render(request, "audit/report_index.html", {"names": [], "names_total": 0, "period_form": form,
                                                           "sections": [], "error": _error_text(form)}, status=400)
    since, until = form.cleaned_data["since"], form.cleaned_data["until"]
    names, total = audit_selectors.report_names(request.user, form.cleaned_data["model"])
    # Each section covers the period where it has one (the portfolio's months); the others show "now".
    # Sections that need the same answer (the re-certification queue) compute it once for the page.
    with once_per_page():
        sections = [section for path in settings.AUDIT_REPORT_SECTIONS
                    for section in import_string(path)(request.user, since=since, until=until)]
    return render(request, "audit/report_index.html", {"names": names, "names_total": total, "sections": sections,
                                                       "period_form": form, "name_filter": form.cleaned_data["model"]})


@login_required
@require_GET
def model_report(request, name: str):
    if not _visible_model_names(request.user, [name]):
        raise Http404("No such model")
    form = ReportForm(request.GET)
    if not form.is_valid():
        return render(request, "audit/report_index.html", {"names": [], "form": form,
                                                           "error": _error_text(form)}, status=400)
    since, until, fmt = form.cleaned_data["since"], form.cleaned_data["until"], form.cleaned_data["format"]
    report = audit_selectors.model_report(request.user, name, since=since, until=until)
    if report["model"] is None and not report["events"]:
        raise Http404("No such model")
    period = AuditFilters(since=since, until=until).as_params()
    context = {**report, "period_query": urlencode(period), "summary": report_summary(report["events"]),
               "may_verify": audit_selectors.sees_everything(request.user),
               "form": {k: request.GET.get(k, "") for k in ("since", "until")},
               "sees_everything": audit_selectors.sees_everything(request.user),
               "latest_checkpoint": checkpoints.latest_checkpoint_name()}
    stem = f"audit-report-{slugify(name) or 'model'}"
    if fmt in ("csv", "html"):
        audit_service.audit_export_record(actor=request.user, fmt=fmt, filters={"model": name, **period},
                                          upto_seq=report["head_seq"], source_ip=client_ip(request),
                                          what="model report")
    if fmt == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        writer = csv.writer(response)
        for row in audit_selectors.report_csv_rows(report):
            writer.writerow(row)
        response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
        return response
    if fmt == "html":
        body = render_to_string("audit/model_report_standalone.html", context, request=request)
        response = HttpResponse(body, content_type="text/html; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stem}.html"'
        return response
    return render(request, "audit/model_report.html", context)


@login_required
@require_GET
def checkpoint_download(request):
    if not audit_selectors.sees_everything(request.user):
        raise Http404("No checkpoint")
    name = checkpoints.latest_checkpoint_name()
    if name is None:
        raise Http404("No signed checkpoint has been written yet")
    return FileResponse(checkpoints.open_checkpoint(name), as_attachment=True, filename=name,
                        content_type="application/json")


@login_required
@require_POST
def verify(request):
    """"Verify chain" on the report and search pages (auditors and staff): runs now, in the request, and
    says the result on the page it came from. By default from the newest signed checkpoint (its cost is
    the events since then, whatever the size of the trail); scope=whole re-hashes every event (its cost
    grows with the trail). The check is itself an audit event."""
    whole = request.POST.get("scope") == "whole"
    result = audit_service.audit_verify_requested(actor=request.user, source_ip=client_ip(request), whole=whole)
    if result.ok and result.scope == "incremental":
        messages.success(request, f"Audit chain intact: {result.count} events verified since the signed checkpoint "
                                  f"at seq {result.from_seq}, head seq {result.head_seq}. Events up to seq "
                                  f"{result.from_seq} are vouched for by that checkpoint; verify the whole chain "
                                  "to re-hash them.")
    elif result.ok:
        messages.success(request, f"Audit chain intact: {result.count} events verified, head seq {result.head_seq}.")
    else:
        messages.error(request, f"Audit chain BROKEN at seq {result.broken_seq}: {result.reason}")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("audit:search")
    return redirect(back)
