"""Model risk on the registry pages: the tier (and its pending change) on the model page, findings with
their history on the model and version pages, open findings in the auditor's report."""

from django.conf import settings
from django.utils import timezone

from governance.access import can, request_checker, visible_models
from governance.risk import selectors
from governance.risk.forms import FindingForm, TierChangeForm
from governance.risk.models import FindingState
from registry_ui.mirror.models import RegisteredModel


def _findings_context(user, model, findings, checker) -> dict:
    may_approve = can(user, "approve", model, checker=checker)
    history = selectors.finding_history(findings)
    rows = []
    for f in findings:
        steps = []
        if f.state == FindingState.OPEN and (f.owner_id == user.pk or may_approve):
            steps.append("propose")
        if f.state == FindingState.CLOSURE_PROPOSED and may_approve and f.owner_id != user.pk:
            steps += ["accept", "decline"]
        rows.append({"finding": f, "history": history.get(f.pk, []), "steps": steps})
    return {"model": model, "rows": rows, "may_raise": may_approve, "today": timezone.localdate()}


def risk_panels(kind: str, request, obj) -> list[tuple[str, dict]]:
    user, checker = request.user, request_checker(request)
    model = obj if kind == "model" else getattr(obj, "model", None)
    if kind not in ("model", "version") or model is None or not can(user, "view", model, checker=checker):
        return []
    version = obj.version if kind == "version" else None
    findings = list(selectors.findings_of(model, version).select_related("model"))
    context = _findings_context(user, model, findings, checker)
    context.update({"version": version, "next": request.get_full_path(),
                    "form": FindingForm(initial={"model": model.name, "version": version}, auto_id="finding_%s")})
    panels = []
    if kind == "model":
        tier = selectors.tier_of(model)
        pending = selectors.pending_tier_change(model)
        panels.append(("risk/panels/tier.html", {
            "model": model, "tier": tier, "tier_label": selectors.tier_label(tier),
            "meaning": (selectors.tiers().get(tier) or {}).get("meaning", ""),
            "tier_policy": selectors.tier_policy(tier), "pending": pending,
            "may_decide": pending is not None and pending.requester_id != user.pk
            and can(user, "approve", model, checker=checker),
            "may_request": pending is None and (can(user, "request", model, checker=checker)
                                                or can(user, "approve", model, checker=checker)),
            "history": selectors.tier_changes(model), "next": request.get_full_path(),
            "form": TierChangeForm(initial={"model": model.name}, auto_id="tier_%s"),
        }))
    panels.append(("risk/panels/findings.html", context))
    return panels


def review_findings(user, req) -> dict:
    """The findings on the request's model and version, for the review page."""
    if req.model is None:
        return {"rows": []}
    findings = list(selectors.findings_of(req.model, req.version).select_related("model"))
    context = _findings_context(user, req.model, findings, None)
    context["tier_label"] = selectors.tier_label(selectors.tier_of(req.model))
    return context


# Open findings shown on the reports page: the most severe and oldest due; each model's report lists all of
# its own, and the findings API all of them (2,000 open findings once made the page several seconds long).
REPORT_FINDINGS = 100


def audit_report_sections(user, *, since=None, until=None) -> list[tuple[str, dict]]:
    """Open findings (with their history) on the models the user may see, for the auditor's report
    (those open now, whatever the period)."""
    findings, total = selectors.open_findings_report(visible_models(user, RegisteredModel.objects.all()),
                                                     limit=REPORT_FINDINGS)
    history = selectors.finding_history(findings)
    rows = [{"finding": f, "history": history.get(f.pk, [])} for f in findings]
    return [("risk/audit_findings.html", {"rows": rows, "findings_total": total, "tiers": settings.RISK_TIERS,
                                          "today": timezone.localdate()})]
