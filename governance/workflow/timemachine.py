"""The time machine: "what held Production / @champion at <time>, and who approved it?"

Answered from the audit trail, which records every change of a stage or alias the console saw: its own
deploys (deploy.succeeded: the target before and after, the rollback alias moved beside it) and
everybody else's (registry.drift). The state at a time is the `after` of the last such change at or
before it; before the first recorded change, the `before` that change found. The holder's approval is
the request whose deploy put it there: its approvers, and the evidence frozen at that approval. A
holder put there by hand (drift) has no approval, and the answer says so.
"""

from __future__ import annotations

from datetime import datetime

from governance.audit.models import AuditEvent
from governance.errors import NotFound
from governance.workflow.models import PromotionRequest
from registry_ui.mirror.models import RegisteredModel

CHANGE_ACTIONS = ("deploy.succeeded", "registry.drift")


def _changes(model_name: str, kind: str, target: str) -> list[dict]:
    """Every recorded change of this target, oldest first: {"seq", "at", "before", "after", "by",
    "event", "request"}, where before/after are the holders (a set of versions for a stage, at most
    one for an alias), None when the event does not say."""
    out = []
    for e in AuditEvent.objects.filter(model_name=model_name, action__in=CHANGE_ACTIONS).order_by("seq"):
        change = _as_change(e, kind, target)
        if change is not None:
            out.append({"seq": e.seq, "at": e.timestamp, "event": e, "request": e.request_id,
                        "by": "deploy" if e.action == "deploy.succeeded" else "drift", **change})
    return out


def _holders(value) -> frozenset:
    return frozenset(int(v) for v in value if v is not None)


def _as_change(e: AuditEvent, kind: str, target: str) -> dict | None:
    before = e.before if isinstance(e.before, dict) else {}
    after = e.after if isinstance(e.after, dict) else {}
    if kind == "alias":
        if after.get("alias") == target and "version" in after:
            return {"before": _holders([before.get("version")]) if "version" in before else None,
                    "after": _holders([after.get("version")]), "version": after.get("version")}
        moved = after.get("rollback") if e.action == "deploy.succeeded" else None
        if isinstance(moved, dict) and moved.get("alias") == target:
            return {"before": _holders([moved.get("was")]), "after": _holders([moved.get("version")]),
                    "version": moved.get("version")}
        return None
    # Stages: a deploy to this stage lists its holders after; a deploy that moved a holder elsewhere,
    # and drift, say how one version's stage changed.
    if e.action == "deploy.succeeded" and after.get("stage") == target and "holders" in after:
        return {"before": _holders(before.get("holders", [])) if "holders" in before else None,
                "after": _holders(after["holders"]), "version": e.version}
    old = before.get("candidate_stage") if e.action == "deploy.succeeded" else before.get("stage")
    new = after.get("stage") if e.action == "registry.drift" else (after.get("stage") if "holders" in after else None)
    if e.version is None or old == new or target not in (old, new):
        return None
    return {"delta": (int(e.version), new == target), "version": e.version}


def held_at(*, user, model_name: str, target_stage: str = "", target_alias: str = "", at: datetime) -> dict:
    """What held the target at `at` and how it got there. Raises NotFound for a model the user may
    not see. {"model", "target", "at", "holders", "version", "known", "since", "via", "approval"}."""
    from governance.access import visible_models

    model = visible_models(user, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    kind, target = ("stage", target_stage) if target_stage else ("alias", target_alias)
    changes = _changes(model.name, kind, target)
    label = target if kind == "stage" else f"@{target}"
    answer = {"model": model.name, "target": label, "at": at.isoformat(), "holders": [], "version": None,
              "known": True, "since": None, "via": None, "approval": None}
    if model.created_at and at < model.created_at:
        answer["via"] = "the model did not exist yet"
        return answer
    state: frozenset | None = None
    last = None
    for change in changes:
        if change["at"] > at:
            if state is None:
                state = _before(change)
            break
        state = _apply(state, change)
        last = change
    else:
        if state is None:
            state = _now(model, kind, target)
    if state is None:
        answer["known"] = False
        answer["via"] = "no record of this target before that time"
        return answer
    holders = sorted(state)
    answer["holders"] = holders
    answer["version"] = max(holders) if holders else None
    # How the holder got there: the last change at or before `at` that put it there.
    origin = None
    for change in changes:
        if change["at"] > at:
            break
        if answer["version"] is not None and change.get("version") == answer["version"] and (
                answer["version"] in (change.get("after") or ()) or change.get("delta", (None, False))[1]):
            origin = change
    if origin is None:
        answer["via"] = "held before the console recorded any change of this target" if last is None or \
            answer["version"] is not None else "nothing held it"
        return answer
    answer["since"] = origin["at"].isoformat()
    answer["via"] = origin["by"]
    if origin["by"] == "deploy" and origin["request"]:
        answer["approval"] = approval_of(origin["request"])
    return answer


def _apply(state: frozenset | None, change: dict) -> frozenset | None:
    if "after" in change:
        return change["after"]
    version, entered = change["delta"]
    base = set(state or ())
    (base.add if entered else base.discard)(version)
    return frozenset(base)


def _before(change: dict) -> frozenset | None:
    """The state found by the first recorded change (what held the target before the console saw it move)."""
    if change.get("before") is not None:
        return change["before"]
    if "delta" in change:
        version, entered = change["delta"]
        # A version left the stage: it held it before. One entered: what else held it is unknown.
        return None if entered else frozenset({version})
    return None


def _now(model, kind: str, target: str) -> frozenset:
    from registry_ui.mirror.models import ModelAlias, ModelVersion

    if kind == "alias":
        return frozenset(ModelAlias.objects.filter(model=model, alias=target).values_list("version", flat=True))
    return frozenset(ModelVersion.objects.filter(model=model, stage=target).values_list("version", flat=True))


def approval_of(request_id: int) -> dict | None:
    """Who approved the request that put a holder in place, and the evidence frozen at that approval."""
    req = PromotionRequest.objects.filter(pk=request_id).first()
    if req is None:
        return None
    approvals = [{"approver": a.approver_username, "at": a.created_at.isoformat(), "comment": a.comment}
                 for a in req.approvals.filter(superseded_at__isnull=True)]
    return {"request": req.pk, "requester": req.requester_username, "approved_by": approvals,
            "emergency": req.emergency, "decided_by": req.decided_by, "justification": req.justification,
            "deployed_by": req.deployed_by, "deployed_at": req.deployed_at.isoformat() if req.deployed_at else None,
            "evidence": req.approval_evidence or req.evidence}
