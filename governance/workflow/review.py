"""What the review page (a request's detail) shows, computed from the frozen evidence: the candidate
against the incumbent with deltas and which way is better, each gate with its threshold and the value
read, the timeline in words, and the actions the viewer may take now or could take but for a reason.

A presentation selector: it reads, never writes, and decides nothing the services decide. Which
actions are offered comes from policies.transition_refusal (the services' own check); a failing gate
on a Production-like target is shown as the reason approve is disabled, because the approve service
refuses it for that same reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.urls import reverse

from governance.workflow.models import PromotionRequest, RequestState
from governance.workflow.policies import failing, request_is_production_like, required_quorum, transition_refusal
from registry_ui.pages.compare import lower_is_better

ACTIONS = ("approve", "reject", "cancel", "deploy", "review")
# The states in which an action is the obvious next step: there a refusal is worth explaining
# (a disabled button with the reason); elsewhere the button is simply absent.
RELEVANT_STATES = {
    "approve": {RequestState.PENDING},
    "reject": {RequestState.PENDING},
    "cancel": {RequestState.PENDING, RequestState.APPROVED, RequestState.FAILED},
    "deploy": {RequestState.APPROVED, RequestState.FAILED, RequestState.DEPLOYING},
    # Closing the post-hoc review of a break-glass deploy (only offered while that review is open).
    "review": {RequestState.DEPLOYED, RequestState.FAILED, RequestState.CANCELLED},
}


def _number(raw) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def metric_direction(key: str, rules: dict) -> str:
    """'higher' or 'lower' is better: from the policy when it says (compare metric, thresholds),
    otherwise from the metric's name (losses and errors are lower-is-better)."""
    if rules.get("compare_metric") == key:
        return "higher" if rules.get("higher_is_better", True) else "lower"
    bounds = (rules.get("metric_thresholds") or {}).get(key) or {}
    if "min" in bounds and "max" not in bounds:
        return "higher"
    if "max" in bounds and "min" not in bounds:
        return "lower"
    return "lower" if lower_is_better(key) else "higher"


@dataclass
class MetricRow:
    key: str
    candidate: object
    incumbent: object
    delta: float | None
    direction: str  # "higher" | "lower"
    verdict: str  # "better" | "worse" | "same" | ""
    in_policy: bool


def metric_rows(candidate: dict, incumbent: dict, rules: dict) -> list[MetricRow]:
    mine, theirs = candidate.get("metrics") or {}, incumbent.get("metrics") or {}
    policy_keys = {rules.get("compare_metric"), *(rules.get("metric_thresholds") or {})}
    rows = []
    for key in sorted(set(mine) | set(theirs), key=lambda k: (k not in policy_keys, k)):
        a, b = _number(mine.get(key)), _number(theirs.get(key))
        direction = metric_direction(key, rules)
        delta = a - b if a is not None and b is not None else None
        verdict = ""
        if delta is not None:
            if delta == 0:
                verdict = "same"
            else:
                verdict = "better" if (delta > 0) == (direction == "higher") else "worse"
        rows.append(MetricRow(key=key, candidate=mine.get(key), incumbent=theirs.get(key), delta=delta,
                              direction=direction, verdict=verdict, in_policy=key in policy_keys))
    return rows


@dataclass
class GateRow:
    gate: str
    kind: str
    subject: str
    threshold: str
    value: object
    passed: bool
    detail: str


def gate_rows(gates: list[dict], candidate: dict, incumbent: dict, rules: dict) -> list[GateRow]:
    """Each gate as (what, threshold, value read, pass/fail): the gate's own result, with threshold and
    value taken from the frozen policy and snapshot it was judged on."""
    rows = []
    for g in gates or []:
        kind, _, subject = str(g.get("gate", "")).partition(":")
        threshold, value = "", None
        if kind == "tag":
            threshold = f"= {(rules.get('required_tags') or {}).get(subject, '?')}"
            value = (candidate.get("tags") or {}).get(subject)
        elif kind == "threshold":
            bounds = (rules.get("metric_thresholds") or {}).get(subject) or {}
            threshold = " and ".join([*([f"≥ {bounds['min']}"] if "min" in bounds else []),
                                      *([f"≤ {bounds['max']}"] if "max" in bounds else [])])
            value = (candidate.get("metrics") or {}).get(subject)
        elif kind == "not_worse":
            higher = rules.get("higher_is_better", True)
            theirs = (incumbent.get("metrics") or {}).get(subject)
            threshold = f"{'≥' if higher else '≤'} incumbent v{incumbent.get('version', '?')} ({theirs})"
            value = (candidate.get("metrics") or {}).get(subject)
        else:
            subject = subject or kind
        rows.append(GateRow(gate=str(g.get("gate", "")), kind=kind, subject=subject, threshold=threshold, value=value,
                            passed=bool(g.get("passed")), detail=str(g.get("detail", ""))))
    return rows


def _target(req: PromotionRequest) -> str:
    return req.target_label


def _holder(before) -> str:
    if not isinstance(before, dict):
        return ""
    if before.get("version"):
        return f"v{before['version']}"
    holders = before.get("holders") or []
    return ", ".join(f"v{v}" for v in holders) if holders else ""


def timeline(req: PromotionRequest, history: list[dict], incumbent: dict) -> list[dict]:
    """The request's audit events as sentences: "ana requested v7 -> @champion (replacing v5)"."""
    out = []
    replacing = f" (replacing v{incumbent['version']})" if incumbent.get("version") and \
        incumbent.get("version") != req.version else ""
    for e in history:
        who, action, after = e["actor"], e["action"], e.get("after") if isinstance(e.get("after"), dict) else {}
        if action == "request.created":
            verb = "requested a rollback to" if req.rollback else "requested"
            text = f"{who} {verb} v{req.version} → {_target(req)}{replacing}"
        elif action == "request.approved":
            n, quorum = after.get("approvals"), after.get("quorum")
            text = f"{who} approved" + (f" ({n} of {quorum} approvals)" if n and quorum and quorum > 1 else "")
            if after.get("override"):
                text += ", overriding failing gates"
        elif action == "request.rejected":
            text = f"{who} rejected the request"
        elif action == "request.cancelled":
            text = f"{who} cancelled the request"
        elif action == "deploy.started":
            text = f"{who} started deploying v{req.version} to {_target(req)}"
        elif action == "deploy.succeeded":
            previous = _holder(e.get("before"))
            text = f"{who} deployed v{req.version} to {_target(req)}" + (f" (replacing {previous})" if previous and
                                                                        previous != f"v{req.version}" else "")
        elif action == "deploy.failed":
            text = f"the deploy by {who} failed: {after.get('error') or 'see the error above'}"
        elif action == "request.reapproval_required":
            text = f"a deploy by {who} found changed evidence: the request needs approving again"
        else:
            text = f"{who}: {action}"
        out.append({"at": e["at"], "text": text, "comment": e.get("comment") or "", "action": action,
                    "seq": e.get("seq")})
    return out


@dataclass
class ActionOffer:
    name: str
    allowed: bool
    reason: str = ""
    consequence: str = ""
    needs_comment: bool = False
    override: bool = False  # approve with failing gates on a non-Production target: override + comment
    danger: bool = False
    url: str = ""


def _consequence(req: PromotionRequest, action: str, incumbent: dict) -> str:
    target = f"{req.model_name} v{req.version} → {_target(req)}"
    holder = f"v{incumbent['version']}" if incumbent.get("version") and incumbent["version"] != req.version else ""
    if action == "approve":
        given = req.approvals.filter(superseded_at__isnull=True).count()
        quorum = required_quorum(req)
        if given + 1 >= quorum:
            after = "The request becomes approved and ops may deploy it."
        else:
            after = f"This is approval {given + 1} of {quorum}; the request stays pending."
        return f"Approve request #{req.pk}: {target}. {after}"
    if action == "reject":
        return f"Reject request #{req.pk}: {target}. The request is closed; the requester sees your reason."
    if action == "cancel":
        return f"Cancel request #{req.pk}: {target}. Nothing is written to MLflow."
    if action == "review":
        return (f"Close the post-hoc review of emergency request #{req.pk} ({target}), deployed without approval "
                f"by {req.requester_username}. Your comment (what you found) goes on the record.")
    if req.target_alias:
        move = f"MLflow's @{req.target_alias} moves to v{req.version}" + (f" (from {holder})" if holder else "")
    else:
        archiving = req.archive_existing and req.target_stage != "Archived"
        archive = " and the versions now in it are archived" if archiving else ""
        move = f"v{req.version} moves to the {req.target_stage} stage in MLflow{archive}"
    return f"Deploy request #{req.pk}: {move}. This writes to MLflow now."


def action_offers(user, req: PromotionRequest, incumbent: dict) -> list[ActionOffer]:
    """Every action the viewer may take now (enabled), and those their role allows but the request's
    state, separation of duties or a failing gate blocks (disabled, with the reason)."""
    offers = []
    failed_gates = failing(req.gate_results or [])
    for name in ACTIONS:
        refusal = transition_refusal(user, req, name)
        if isinstance(refusal, PermissionDenied) or req.state not in RELEVANT_STATES[name]:
            continue
        if name == "review" and not (req.emergency and req.reviewed_at is None):
            continue
        offer = ActionOffer(name=name, allowed=refusal is None, reason=str(refusal) if refusal else "",
                            consequence=_consequence(req, name, incumbent),
                            needs_comment=name in ("reject", "review"),
                            danger=name in ("reject", "cancel"),
                            url=reverse(f"governance:request_{name}", args=[req.pk]))
        if name == "approve" and offer.allowed and failed_gates:
            why = "; ".join(g.get("detail", g.get("gate", "")) for g in failed_gates)
            if request_is_production_like(req):
                offer.allowed = False
                offer.reason = f"Policy gates fail, so {req.target_label} cannot be approved: {why}"
            else:
                offer.override = True
                offer.needs_comment = True
                offer.consequence += f" Gates fail ({why}): approving overrides them and needs a comment."
        offers.append(offer)
    return offers


@dataclass
class Links:
    version: str = ""
    run: str = ""
    compare: str = ""
    lineage: str = ""
    incumbent: str = ""
    model: str = ""


def links(req: PromotionRequest, candidate: dict, incumbent: dict) -> Links:
    if req.model is None:
        return Links()
    name = req.model.name
    out = Links(model=reverse("registry:model_detail", args=[name]),
                version=reverse("registry:version_detail", args=[name, req.version]),
                lineage=reverse("registry:lineage", args=[name, req.version]))
    if incumbent.get("version") and incumbent["version"] != req.version:
        out.incumbent = reverse("registry:version_detail", args=[name, incumbent["version"]])
        out.compare = reverse("registry:compare") + "?" + urlencode(
            [("v", f"{name}:{incumbent['version']}"), ("v", f"{name}:{req.version}")])
    if candidate.get("run_id"):
        out.run = out.version + "#source"
    return out


@dataclass
class Review:
    req: PromotionRequest
    candidate: dict
    incumbent: dict
    evidence: dict
    rules: dict
    metrics: list[MetricRow]
    gates: list[GateRow]
    timeline: list[dict]
    offers: list[ActionOffer]
    links: Links
    quorum: int = 1
    approvals_given: int = 0
    extra: dict = field(default_factory=dict)


def review(user, req: PromotionRequest, history: list[dict]) -> Review:
    evidence = req.approval_evidence or req.evidence or {}
    candidate = evidence.get("candidate") or {}
    incumbent = evidence.get("incumbent") or {}
    rules = ((evidence.get("policy") or {}).get("rules")) or {}
    return Review(
        req=req, candidate=candidate, incumbent=incumbent, evidence=evidence, rules=rules,
        metrics=metric_rows(candidate, incumbent, rules),
        gates=gate_rows(req.gate_results or [], candidate, incumbent, rules),
        timeline=timeline(req, history, req.evidence.get("incumbent") or {} if req.evidence else incumbent),
        offers=action_offers(user, req, incumbent), links=links(req, candidate, incumbent),
        quorum=required_quorum(req), approvals_given=req.approvals.filter(superseded_at__isnull=True).count(),
    )
