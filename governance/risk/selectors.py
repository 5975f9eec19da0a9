"""Reads of model risk: tiers (configured in settings), a model's tier and its pending change, findings."""

from django.conf import settings
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.risk.models import OPEN_FINDING_STATES, Finding, ModelRiskTier, Severity, TierChange, TierChangeState


def tiers() -> dict[str, dict]:
    """{key: {"label", "meaning"}} from settings.RISK_TIERS, in their order."""
    return dict(settings.RISK_TIERS)


def tier_label(key: str) -> str:
    return (tiers().get(key) or {}).get("label", key) if key else "Unassigned"


def tier_of(model) -> str:
    """The model's tier key, '' when none was approved yet."""
    if model is None or getattr(model, "pk", None) is None:
        return ""
    return ModelRiskTier.objects.filter(model_id=model.pk).values_list("tier", flat=True).first() or ""


def tiers_of(model_ids) -> dict[int, str]:
    """{model id: tier key} of the models that have a tier, in one query (a list or a subquery of ids)."""
    return dict(ModelRiskTier.objects.filter(model_id__in=model_ids).values_list("model_id", "tier"))


def tier_policy(tier: str) -> dict:
    """The per-tier defaults (settings.RISK_TIER_POLICY) of `tier`; {} for no tier."""
    return dict((settings.RISK_TIER_POLICY or {}).get(tier) or {}) if tier else {}


def pending_tier_change(model) -> TierChange | None:
    return TierChange.objects.filter(model=model, state=TierChangeState.PENDING).first()


def tier_changes(model, limit: int = 10) -> list[TierChange]:
    return list(TierChange.objects.filter(model=model)[:limit])


def findings_of(model, version: int | None = None, *, open_only: bool = False):
    """Findings on the model itself and (with `version`) on that version; newest first."""
    qs = Finding.objects.filter(model=model)
    qs = qs.filter(Q(version__isnull=True) | Q(version=version)) if version is not None else qs
    return qs.filter(state__in=OPEN_FINDING_STATES) if open_only else qs


def blocking_findings(model, version: int) -> list[Finding]:
    """Open blocking findings on the model or on this version: approval of the version waits for them."""
    if model is None or getattr(model, "pk", None) is None:
        return []
    return list(findings_of(model, version, open_only=True).filter(severity=Severity.BLOCKING).order_by("id"))


def annotate_blocking(requests) -> None:
    """Set `_risk_blocking` (what blocking_findings would answer) on each promotion request, in one query:
    lists of requests (the inbox, the menu count) then judge approval without a query per row."""
    model_ids = {r.model_id for r in requests if r.model_id}
    found = list(Finding.objects.filter(model_id__in=model_ids, state__in=OPEN_FINDING_STATES,
                                        severity=Severity.BLOCKING).order_by("id")) if model_ids else []
    for req in requests:
        req._risk_blocking = [f for f in found if f.model_id == req.model_id
                              and (f.version is None or f.version == req.version)]


def overdue_findings(*, today=None):
    today = today or timezone.localdate()
    return Finding.objects.filter(state__in=OPEN_FINDING_STATES, due_date__lt=today).select_related("model", "owner")


def finding_history(findings) -> dict[int, list[AuditEvent]]:
    """{finding id: its audit events, oldest first} in one query."""
    ids = [f.pk for f in findings]
    if not ids:
        return {}
    names = {f.model.name for f in findings}
    out: dict[int, list[AuditEvent]] = {pk: [] for pk in ids}
    for event in AuditEvent.objects.filter(action__startswith="finding.", model_name__in=names).order_by("seq"):
        pk = (event.after or {}).get("finding") if isinstance(event.after, dict) else None
        if pk in out:
            out[pk].append(event)
    return out


def open_findings_report(models_qs, *, limit: int) -> tuple[list[Finding], int]:
    """Open findings on the given models for the auditor report, most severe, then oldest due, first: the
    first `limit` of them, ordered by the database, and how many there are in all."""
    severity = Case(*(When(severity=s, then=Value(i)) for i, s in enumerate(
        (Severity.BLOCKING, Severity.MAJOR, Severity.MINOR))), default=Value(9), output_field=IntegerField())
    found = Finding.objects.filter(model__in=models_qs, state__in=OPEN_FINDING_STATES)
    rows = list(found.select_related("model").annotate(_rank=severity).order_by("_rank", "due_date", "pk")[:limit])
    return rows, (found.count() if len(rows) == limit else len(rows))
