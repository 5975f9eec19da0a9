"""The portfolio page and its CSV export. Thin: check who may see it, call the selector, render. A bad
filter is a 400 naming the field (the page shows the form with the message; nothing is listed)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from governance.portfolio import selectors

REFUSED = "The portfolio is for approvers, auditors and administrators."
# Rows per page of the table: totals, charts and the CSV cover every model; rendering thousands of table
# rows is what a large portfolio page would otherwise spend its time on.
ROWS_PER_PAGE = 200


def _errors(errors) -> str:
    return " ".join(f"{field}: {' '.join(str(m) for m in messages)}" for field, messages in errors.items())


@login_required
@require_GET
def portfolio(request: HttpRequest) -> HttpResponse:
    if not selectors.may_see(request.user):
        raise PermissionDenied(REFUSED)
    try:
        data = selectors.portfolio(request.user, request.GET)
    except ValueError as exc:
        fs = selectors.filterset(request.user, request.GET)
        return render(request, "risk/portfolio.html", {"filter": fs, "error": _errors(exc.args[0]), "rows": []},
                      status=400)
    query = request.GET.copy()
    query.pop("page", None)
    page = Paginator(data.rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "risk/portfolio.html", {
        "filter": data.filterset, "rows": page.object_list, "page": page, "totals": data.totals,
        "by_tier": data.by_tier, "period": data.period, "figures": data.figures(), "months": data.monthly_table(),
        "query": query.urlencode()})


@login_required
@require_GET
def portfolio_csv(request: HttpRequest) -> HttpResponse:
    if not selectors.may_see(request.user):
        raise PermissionDenied(REFUSED)
    try:
        body = selectors.portfolio_csv(request.user, request.GET)
    except ValueError as exc:
        return HttpResponse(_errors(exc.args[0]) + "\n", status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="portfolio.csv"'
    return response
