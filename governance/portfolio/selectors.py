"""The portfolio's rows, totals and monthly counts: a fixed number of queries whatever the number of
models (one grouped query per kind of fact, each narrowed by a subquery of the filtered models, never
a query per model), plus the re-certification queue, itself batched."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from django.db.models import BooleanField, Count, ExpressionWrapper, Max, OuterRef, Q, Subquery
from django.db.models.functions import TruncMonth
from django.utils import timezone

from governance.access import ACTION_PERMS, is_auditor, visible_models
from governance.audit.models import AuditEvent
from governance.portfolio import filters as pf
from governance.risk import selectors as risk
from governance.risk.models import OPEN_FINDING_STATES, Finding, FindingState, ModelRiskTier, Severity
from governance.workflow.models import Deployment, DeploymentState
from governance.workflow.recertification import recertification_queue
from registry_ui.mirror.models import RegisteredModel
from registry_ui.pages import charts

UNASSIGNED = pf.UNASSIGNED
# Deploys that put a version somewhere (a stage or an alias); removals and deletions are not counted.
DEPLOY_KINDS = ("stage", "alias")
COLUMNS = ["model", "tier", "production", "validation", "open_blocking", "open_major", "open_minor",
           "findings_overdue", "deploys_in_period", "last_deploy", "drift_in_period", "rereview_overdue"]
SEVERITIES = [Severity.BLOCKING, Severity.MAJOR, Severity.MINOR]


def may_see(user) -> bool:
    """Approvers (on any model), auditors, staff and admins."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser or is_auditor(user) or user.has_perm(ACTION_PERMS["approve"]):
        return True
    from guardian.shortcuts import get_objects_for_user

    return get_objects_for_user(user, ACTION_PERMS["approve"], klass=RegisteredModel,
                                accept_global_perms=False).exists()


@dataclass
class PortfolioSummary:
    """The totals, the models by tier and the months: what the auditor's reports page shows."""

    totals: dict
    by_tier: dict[str, int]
    period: tuple[datetime, datetime]
    deploys_by_month: pd.DataFrame  # index month (Timestamp), columns tier labels
    findings_by_month: pd.DataFrame  # index month, columns raised_<severity>, closed
    filterset: pf.PortfolioFilterSet = field(repr=False)

    def figures(self) -> dict:
        return {"deploys": charts.monthly_bars(self.deploys_by_month, title="Deploys per month (by risk tier)",
                                               yaxis="deploys"),
                "findings": charts.monthly_bars(self.findings_by_month.drop(columns=["Closed"]),
                                                title="Findings per month (raised by severity, closed)",
                                                yaxis="findings", lines=self.findings_by_month[["Closed"]])}

    def monthly_table(self) -> list[dict]:
        """One row per month of the period: deploys per tier, findings raised per severity, closed."""
        frame = self.deploys_by_month.join(self.findings_by_month, how="outer").fillna(0).astype(int)
        return [{"month": month.strftime("%Y-%m"), "deploys": int(row[self.deploys_by_month.columns].sum()),
                 **{k: int(v) for k, v in row.items()}} for month, row in frame.iterrows()]


@dataclass
class Portfolio(PortfolioSummary):
    """The summary and a row per model (the portfolio page and its CSV)."""

    rows: list[dict] = field(default_factory=list)


def filterset(user, params, *, now=None) -> pf.PortfolioFilterSet:
    """The bound FilterSet over the models `user` may see (check `is_valid()` before reading it)."""
    queue: dict = {}

    def rereview_models() -> set[str]:
        if "names" not in queue:
            queue["items"] = recertification_queue(user, now=now)
            queue["names"] = {item["model"] for item in queue["items"]}
        return queue["names"]

    fs = pf.PortfolioFilterSet(params, queryset=visible_models(user, RegisteredModel.objects.all()),
                               rereview_models=rereview_models,
                               today=timezone.localdate(now) if now else None)
    fs.rereview_queue = lambda: (rereview_models(), queue["items"])[1]
    return fs


def _bound(user, params, now):
    fs = filterset(user, params or {}, now=now)
    if not fs.is_valid():
        raise ValueError(fs.errors)
    return fs, fs.qs, fs.period(now)


def _in_period(names, start, end):
    return Deployment.objects.filter(model_name__in=names, state=DeploymentState.SUCCEEDED, kind__in=DEPLOY_KINDS,
                                     completed_at__gte=start, completed_at__lte=end)


def _drift_in_period(names, start, end):
    return AuditEvent.objects.filter(action="registry.drift", model_name__in=names, timestamp__gte=start,
                                     timestamp__lte=end)


def _tier_order(counts: dict[str, int]) -> dict[str, int]:
    """The tiers in their configured order, then any other, then the unassigned; none that counts 0."""
    order = {tier: i for i, tier in enumerate(risk.tiers())}
    keys = sorted(counts, key=lambda k: (k == UNASSIGNED, order.get(k, len(order)), k))
    return {k: counts[k] for k in keys if counts[k]}


def summary(user, params=None, *, now=None) -> PortfolioSummary:
    """The portfolio's totals, tiers and months without its rows: each total one aggregate query, so its
    cost does not grow with a row per model (the same figures as `portfolio(...)`'s, which sums its rows)."""
    now = now or timezone.now()
    fs, models, (start, end) = _bound(user, params, now)
    ids, names = models.values("pk"), models.values("name")
    today = timezone.localdate(now)
    open_findings = Finding.objects.filter(model_id__in=ids, state__in=OPEN_FINDING_STATES)
    by_severity = dict(open_findings.values_list("severity").annotate(n=Count("id")).order_by())
    in_period = _in_period(names, start, end)
    queue = fs.rereview_queue()
    queue_models = {item["model"] for item in queue}
    filtered = set(models.filter(name__in=queue_models).values_list("name", flat=True)) if queue_models else set()
    totals = {"open_blocking": by_severity.get(Severity.BLOCKING, 0), "open_major": by_severity.get(Severity.MAJOR, 0),
              "open_minor": by_severity.get(Severity.MINOR, 0),
              "findings_overdue": open_findings.filter(due_date__lt=today).count(),
              "deploys_in_period": in_period.count(), "drift_in_period": _drift_in_period(names, start, end).count(),
              "rereview_overdue": sum(1 for item in queue if item["model"] in filtered),
              "models": models.count()}
    counts = {tier: n for tier, n in ModelRiskTier.objects.filter(model_id__in=ids).values_list("tier")
              .annotate(n=Count("id")).order_by() if tier}
    counts[UNASSIGNED] = totals["models"] - sum(counts.values())
    return PortfolioSummary(totals=totals, by_tier=_tier_order(counts), period=(start, end),
                            deploys_by_month=_deploys_by_month(in_period, start, end),
                            findings_by_month=_findings_by_month(ids, start, end), filterset=fs)


def portfolio(user, params=None, *, now=None) -> Portfolio:
    """The portfolio of the models `user` may see, narrowed by `params` (PortfolioFilterSet's); raises
    ValueError with the form's errors when a parameter is invalid."""
    now = now or timezone.now()
    fs, models, (start, end) = _bound(user, params, now)
    ids, names = models.values("pk"), models.values("name")
    today = timezone.localdate(now)

    base = list(models.order_by("name").values_list("pk", "name"))
    tiers = risk.tiers_of(ids)
    findings: dict[int, dict[str, int]] = {}
    is_late = ExpressionWrapper(Q(due_date__lt=today), output_field=BooleanField())
    for model_id, severity, late, n in (
            Finding.objects.filter(model_id__in=ids, state__in=OPEN_FINDING_STATES).annotate(late=is_late)
            .values_list("model_id", "severity", "late").annotate(n=Count("id")).order_by()):
        counts = findings.setdefault(model_id, {})
        counts[severity] = counts.get(severity, 0) + n
        if late:
            counts["overdue"] = counts.get("overdue", 0) + n
    deployed = Deployment.objects.filter(model_name__in=names, state=DeploymentState.SUCCEEDED, kind__in=DEPLOY_KINDS)
    last_deploy = dict(deployed.filter(completed_at__lte=end).values("model_name").annotate(at=Max("completed_at"))
                       .values_list("model_name", "at"))
    in_period = _in_period(names, start, end)
    deploys = dict(in_period.values("model_name").annotate(n=Count("id")).values_list("model_name", "n"))
    drift = dict(_drift_in_period(names, start, end)
                 .values("model_name").annotate(n=Count("id")).values_list("model_name", "n"))
    production = dict(RegisteredModel.objects.filter(pk__in=ids, versions__stage="Production")
                      .values("pk").annotate(v=Max("versions__version")).values_list("pk", "v"))
    validation = dict(models.annotate(_v=pf._latest_validation()).values_list("pk", "_v"))
    overdue: dict[str, int] = {}
    for item in fs.rereview_queue():
        overdue[item["model"]] = overdue.get(item["model"], 0) + 1

    rows = []
    for pk, name in base:
        counts = findings.get(pk, {})
        tier = tiers.get(pk, "")
        rows.append({"model": name, "tier": tier, "tier_label": risk.tier_label(tier),
                     "production": production.get(pk), "validation": validation.get(pk) or "",
                     "open_blocking": counts.get(Severity.BLOCKING, 0), "open_major": counts.get(Severity.MAJOR, 0),
                     "open_minor": counts.get(Severity.MINOR, 0), "findings_overdue": counts.get("overdue", 0),
                     "deploys_in_period": deploys.get(name, 0), "last_deploy": last_deploy.get(name),
                     "drift_in_period": drift.get(name, 0), "rereview_overdue": overdue.get(name, 0)})
    by_tier: dict[str, int] = {}
    for row in rows:
        by_tier[row["tier"] or UNASSIGNED] = by_tier.get(row["tier"] or UNASSIGNED, 0) + 1
    by_tier = _tier_order(by_tier)
    totals = {key: sum(r[key] for r in rows) for key in (
        "open_blocking", "open_major", "open_minor", "findings_overdue", "deploys_in_period", "drift_in_period",
        "rereview_overdue")}
    totals["models"] = len(rows)
    return Portfolio(rows=rows, totals=totals, by_tier=by_tier, period=(start, end),
                     deploys_by_month=_deploys_by_month(in_period, start, end),
                     findings_by_month=_findings_by_month(ids, start, end), filterset=fs)


def _months(start: datetime, end: datetime) -> pd.DatetimeIndex:
    first = pd.Timestamp(timezone.localtime(start).date().replace(day=1))
    return pd.date_range(first, pd.Timestamp(timezone.localtime(end).date()), freq="MS", name="month")


def _month(value) -> pd.Timestamp:
    return pd.Timestamp(timezone.localtime(value).date().replace(day=1) if getattr(value, "tzinfo", None)
                        else value.replace(day=1))


def _add(frame: pd.DataFrame, month, column: str, n: int) -> None:
    """Count n in the month's row (a month the database truncated differently than the period is skipped
    rather than invented)."""
    key = _month(month)
    if key in frame.index:
        frame.loc[key, column] += n


def _deploys_by_month(deploys, start, end) -> pd.DataFrame:
    """Deploys per month and tier (the tier the model is in now), zero-filled over the period."""
    tier_of_name = Subquery(ModelRiskTier.objects.filter(model__name=OuterRef("model_name")).values("tier")[:1])
    labels = [risk.tier_label(k) for k in risk.tiers()] + [risk.tier_label("")]
    frame = pd.DataFrame(0, index=_months(start, end), columns=labels)
    for month, tier, n in (deploys.annotate(month=TruncMonth("completed_at"), tier=tier_of_name)
                           .values_list("month", "tier").annotate(n=Count("id")).order_by()):
        _add(frame, month, risk.tier_label(tier or ""), n)
    return frame.loc[:, (frame != 0).any(axis=0)] if frame.values.any() else frame.iloc[:, :0]


def _findings_by_month(model_ids, start, end) -> pd.DataFrame:
    """Findings raised per month by severity, and closed per month, zero-filled over the period."""
    columns = [Severity(s).label for s in SEVERITIES] + ["Closed"]
    frame = pd.DataFrame(0, index=_months(start, end), columns=columns)
    scope = Finding.objects.filter(model_id__in=model_ids)
    for month, severity, n in (scope.filter(created_at__gte=start, created_at__lte=end)
                               .annotate(month=TruncMonth("created_at")).values_list("month", "severity")
                               .annotate(n=Count("id")).order_by()):
        _add(frame, month, Severity(severity).label, n)
    for month, n in (scope.filter(state=FindingState.CLOSED, closed_at__gte=start, closed_at__lte=end)
                     .annotate(month=TruncMonth("closed_at")).values_list("month").annotate(n=Count("id"))
                     .order_by()):
        _add(frame, month, "Closed", n)
    return frame


def portfolio_csv(user, params=None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in portfolio(user, params).rows:
        values = [row[c] for c in COLUMNS]
        values = ["" if v is None else (v.isoformat() if hasattr(v, "isoformat") else v) for v in values]
        # A model name starting with = + - @ is not read as a formula by a spreadsheet.
        values = [("'" + v) if isinstance(v, str) and v and v[0] in "=+-@" else v for v in values]
        writer.writerow(values)
    return out.getvalue()
