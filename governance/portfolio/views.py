"""The portfolio page and its CSV export. Thin: check who may see it, call the selector, render."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from governance.portfolio import selectors
from governance.risk.selectors import tiers


def _tier(request: HttpRequest) -> str:
    tier = request.GET.get("tier", "")
    return tier if tier in tiers() or tier == selectors.UNASSIGNED else ""


@login_required
@require_GET
def portfolio(request: HttpRequest) -> HttpResponse:
    if not selectors.may_see(request.user):
        raise PermissionDenied("The portfolio is for approvers, auditors and administrators.")
    tier = _tier(request)
    data = selectors.portfolio(request.user, tier=tier)
    return render(request, "risk/portfolio.html", {**data, "tier": tier, "tiers": tiers(),
                                                   "unassigned": selectors.UNASSIGNED})


@login_required
@require_GET
def portfolio_csv(request: HttpRequest) -> HttpResponse:
    if not selectors.may_see(request.user):
        raise PermissionDenied("The portfolio is for approvers, auditors and administrators.")
    response = HttpResponse(selectors.portfolio_csv(request.user, tier=_tier(request)), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="portfolio.csv"'
    return response
