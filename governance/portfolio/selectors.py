"""The portfolio's rows and totals: a fixed number of queries whatever the number of models (one per
kind of fact, grouped by model), plus the re-certification queue."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from django.db.models import Count, Max
from django.utils import timezone

from governance.access import ACTION_PERMS, is_auditor, visible_models
from governance.audit.models import AuditEvent
from governance.risk import selectors as risk
from governance.risk.models import OPEN_FINDING_STATES, Finding, ModelRiskTier, Severity
from governance.workflow.models import Deployment, DeploymentState
from governance.workflow.recertification import recertification_queue
from registry_ui.mirror.models import RegisteredModel

DRIFT_DAYS = 30
UNASSIGNED = "none"
COLUMNS = ["model", "tier", "production", "open_blocking", "open_major", "open_minor", "last_deploy",
           "drift_30d", "rereview_overdue"]


def may_see(user) -> bool:
    """Approvers (on any model), auditors, staff and admins."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser or is_auditor(user) or user.has_perm(ACTION_PERMS["approve"]):
        return True
    from guardian.shortcuts import get_objects_for_user

    return get_objects_for_user(user, ACTION_PERMS["approve"], klass=RegisteredModel,
                                accept_global_perms=False).exists()


def portfolio(user, *, tier: str = "", now=None) -> dict:
    """{"rows": [...], "totals": {...}, "by_tier": {...}} for the models `user` may see; `tier`: a tier key,
    "none" (models without a tier) or '' (all)."""
    now = now or timezone.now()
    models = visible_models(user, RegisteredModel.objects.all())
    tiers = dict(ModelRiskTier.objects.filter(model__in=models).values_list("model_id", "tier"))
    if tier == UNASSIGNED:
        models = models.exclude(pk__in=list(tiers))
    elif tier:
        models = models.filter(pk__in=[pk for pk, t in tiers.items() if t == tier])
    named = dict(models.values_list("pk", "name"))
    names = list(named.values())
    findings: dict[int, dict[str, int]] = {}
    for model_id, severity, n in (Finding.objects.filter(model_id__in=list(named), state__in=OPEN_FINDING_STATES)
                                  .values_list("model_id", "severity").annotate(n=Count("id"))):
        findings.setdefault(model_id, {})[severity] = n
    last_deploy = dict(Deployment.objects.filter(model_name__in=names, state=DeploymentState.SUCCEEDED)
                       .values("model_name").annotate(at=Max("completed_at")).values_list("model_name", "at"))
    drift = dict(AuditEvent.objects.filter(action="registry.drift", model_name__in=names,
                                           timestamp__gte=now - timedelta(days=DRIFT_DAYS))
                 .values("model_name").annotate(n=Count("id")).values_list("model_name", "n"))
    overdue: dict[str, int] = {}
    for item in recertification_queue(user, now=now):
        overdue[item["model"]] = overdue.get(item["model"], 0) + 1
    production = dict(RegisteredModel.objects.filter(pk__in=list(named), versions__stage="Production")
                      .values("pk").annotate(v=Max("versions__version")).values_list("pk", "v"))
    rows = []
    for pk, name in sorted(named.items(), key=lambda kv: kv[1]):
        counts = findings.get(pk, {})
        rows.append({"model": name, "tier": tiers.get(pk, ""), "tier_label": risk.tier_label(tiers.get(pk, "")),
                     "production": production.get(pk), "open_blocking": counts.get(Severity.BLOCKING, 0),
                     "open_major": counts.get(Severity.MAJOR, 0), "open_minor": counts.get(Severity.MINOR, 0),
                     "last_deploy": last_deploy.get(name), "drift_30d": drift.get(name, 0),
                     "rereview_overdue": overdue.get(name, 0)})
    by_tier: dict[str, int] = {}
    for row in rows:
        by_tier[row["tier"] or UNASSIGNED] = by_tier.get(row["tier"] or UNASSIGNED, 0) + 1
    totals = {key: sum(r[key] for r in rows) for key in ("open_blocking", "open_major", "open_minor", "drift_30d",
                                                          "rereview_overdue")}
    totals["models"] = len(rows)
    return {"rows": rows, "totals": totals, "by_tier": by_tier}


def portfolio_csv(user, *, tier: str = "") -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in portfolio(user, tier=tier)["rows"]:
        values = [row[c] for c in COLUMNS]
        values = ["" if v is None else (v.isoformat() if hasattr(v, "isoformat") else v) for v in values]
        # A model name starting with = + - @ is not read as a formula by a spreadsheet.
        values = [("'" + v) if isinstance(v, str) and v[:1] in "=+-@" else v for v in values]
        writer.writerow(values)
    return out.getvalue()
