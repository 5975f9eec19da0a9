"""Policy gates, evidence snapshots and the workflow's rules (state, permission, separation of duties).

Gates judge evidence read from MLflow at the moment of the decision (`fresh_evidence`: the version's
state and tags, its run's lifecycle, status, latest metrics, params, tags and dataset inputs, and the
same of the incumbent), never the mirror, which may be behind; the evidence and the gate results are
frozen into the request. `transition_refusal` is the single answer to "may this user take this step
on this request now?": buttons (request_actions) and services both use it.
"""

import hashlib
import json
import math
import re
import unicodedata

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from governance.access import can
from governance.cards import selectors as card_selectors
from governance.errors import Conflict, EvidenceUnavailable, PolicyViolation, TransitionNotAllowed
from governance.risk import selectors as risk_selectors
from governance.validation import selectors as validation_selectors
from governance.workflow.models import Operation, PromotionRequest, RequestState
from registry_ui.mirror import client as gateway
from registry_ui.mirror.models import DatasetInput, ModelAlias, ModelVersion, RunSnapshot, Stage

STAGE_TARGETS = [Stage.NONE, Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED]
# Moving to these takes a version out of service: no promotion gates apply.
DEMOTION_STAGES = {Stage.NONE, Stage.ARCHIVED}

ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
RESERVED_ALIASES = {"latest"}


def canonical_name(name: str) -> str:
    """One spelling for stage and alias names that look alike (Unicode NFKC, trimmed, case-folded):
    "Champion", "champion " and "ｃｈａｍｐｉｏｎ" are one name to a policy or a protection. Used for
    matching only; nothing is renamed in MLflow."""
    return unicodedata.normalize("NFKC", name or "").strip().casefold()


def target_alias_problem(alias: str) -> str:
    """Why `alias` cannot be a promotion target ('' when it can). Names that only look like another
    (padded, with invisible characters) are refused rather than quietly cleaned, so the name
    recorded is the name typed."""
    if any(ch.isspace() for ch in alias):
        return f"The alias {alias!r} contains whitespace; aliases are one word (letters, digits, _ and -)."
    hidden = [ch for ch in alias if unicodedata.category(ch) in ("Cf", "Cc", "Co", "Cn")]
    if hidden:
        return (f"The alias {alias!r} contains an invisible character (U+{ord(hidden[0]):04X}); "
                "type the name again without it.")
    if not ALIAS_RE.match(alias) or canonical_name(alias) in RESERVED_ALIASES or re.fullmatch(r"v\d+", alias):
        return f"{alias!r} is not a valid alias (letters, digits, _ and -; not 'latest' or v<n>)."
    return ""


def is_production_like(*, target_stage: str = "", target_alias: str = "") -> bool:
    if target_stage:
        return canonical_name(target_stage) == canonical_name(Stage.PRODUCTION)
    protected = {canonical_name(a) for a in settings.PROTECTED_ALIASES}
    return bool(target_alias) and canonical_name(target_alias) in protected


def request_is_production_like(req: PromotionRequest) -> bool:
    """Production rules (quorum, hard gates, deployer neither requester nor approver) apply to a move
    into or out of Production or a protected alias, and to every deletion (it cannot be undone)."""
    if req.operation in (Operation.DELETE, Operation.RETENTION):
        return True
    if is_production_like(target_stage=req.target_stage, target_alias=req.target_alias):
        return True
    candidate = (req.evidence or {}).get("candidate") or {}
    return candidate.get("stage") == Stage.PRODUCTION or any(
        is_production_like(target_alias=a) for a in candidate.get("aliases") or [])


def is_demotion(*, target_stage: str, candidate: dict | None) -> bool:
    """A move down: out of service (None, Archived) or from Production to Staging."""
    if target_stage in DEMOTION_STAGES:
        return True
    return target_stage == Stage.STAGING and (candidate or {}).get("stage") == Stage.PRODUCTION


def effective_policy(model) -> dict:
    """Global defaults (settings.WORKFLOW_DEFAULT_GATES), then the defaults of the model's risk tier
    (settings.RISK_TIER_POLICY: quorum, require_validation, approval_validity_days), then the model's
    own ModelPolicy, each overriding what it sets. A model without a tier has no tier keys at all."""
    from governance.workflow.models import ModelPolicy

    tier = risk_selectors.tier_of(model)
    own = ModelPolicy.objects.filter(model_id=getattr(model, "pk", None)).first() if model else None
    return _merged_policy(tier, own)


class _Policies(dict):
    """{model id: policy}, each merged from its tier and own policy when first read: a caller that needs
    the policies of a few of 10,000 models merges a few (reading any model gives at least the defaults)."""

    def __init__(self, tiers: dict, own: dict):
        super().__init__()
        self._tiers, self._own = tiers, own

    def __missing__(self, pk):
        policy = self[pk] = _merged_policy(self._tiers.get(pk, ""), self._own.get(pk))
        return policy


def effective_policies(model_ids) -> dict[int, dict]:
    """effective_policy of many models in two queries (their tiers, their own policies), whatever their
    number: {model id: policy}, merged as each is read. `model_ids`: a list or a values("pk") queryset
    (kept as a subquery, so no parameter limit)."""
    from governance.workflow.models import ModelPolicy

    return _Policies(risk_selectors.tiers_of(model_ids),
                     {p.model_id: p for p in ModelPolicy.objects.filter(model_id__in=model_ids)})


def _merged_policy(tier: str, own) -> dict:
    policy = dict(settings.WORKFLOW_DEFAULT_GATES)
    policy["quorum"] = settings.PRODUCTION_QUORUM
    policy["rollback_alias"] = settings.WORKFLOW_ROLLBACK_ALIAS
    policy["delete_after_days"] = settings.WORKFLOW_DELETE_AFTER_DAYS
    policy["retention_keep"] = settings.WORKFLOW_RETENTION_KEEP
    policy["approval_validity_days"] = settings.WORKFLOW_APPROVAL_VALIDITY_DAYS
    if tier:
        policy["risk_tier"] = tier
        policy.update(risk_selectors.tier_policy(tier))
    if own:
        if own.required_tags is not None:
            policy["required_tags"] = own.required_tags
        if own.metric_thresholds is not None:
            policy["metric_thresholds"] = own.metric_thresholds
        if own.compare_metric:
            policy["compare_metric"] = own.compare_metric
            policy["higher_is_better"] = own.higher_is_better
        if own.require_lineage is not None:
            policy["require_lineage"] = own.require_lineage
        if own.production_quorum:
            policy["quorum"] = own.production_quorum
        if own.rollback_alias:
            policy["rollback_alias"] = own.rollback_alias
        if own.approval_validity_days is not None:
            policy["approval_validity_days"] = own.approval_validity_days
        if own.retention_keep is not None:
            policy["retention_keep"] = own.retention_keep
        if own.delete_after_days is not None:
            policy["delete_after_days"] = own.delete_after_days
        if own.validation is not None:
            policy["validation"] = own.validation
    return policy


def policy_snapshot(model) -> dict:
    """The policy in force now, as frozen into evidence: its rules and where they came from (the
    model's own ModelPolicy, over the defaults, or the defaults alone)."""
    from governance.workflow.models import ModelPolicy

    own = ModelPolicy.objects.filter(model_id=getattr(model, "pk", None)).exists() if model else False
    return {"origin": "model policy" if own else "defaults", "rules": effective_policy(model)}


def required_quorum(req: PromotionRequest) -> int:
    if not request_is_production_like(req) or req.urgent:
        return 1
    return max(1, int(effective_policy(req.model).get("quorum") or 1))


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def version_snapshot(model, version: int) -> dict | None:
    """The mirror's view of one version: MLflow state, tags, the run's metrics and a params digest."""
    row = ModelVersion.objects.filter(model=model, version=version).first()
    if row is None:
        return None
    run = RunSnapshot.objects.filter(run_id=row.run_id).first() if row.run_id else None
    datasets = list(DatasetInput.objects.filter(run=run).values("name", "digest", "context")) if run else []
    params = run.params if run else {}
    return {
        "version": row.version,
        "stage": row.stage,
        "status": row.status,
        "source": row.source,
        "run_id": row.run_id,
        "tags": row.tags or {},
        "aliases": sorted(ModelAlias.objects.filter(model=model, version=version).values_list("alias", flat=True)),
        "metrics": run.metrics if run else {},
        "params_digest": hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16] if run else "",
        "run_present": run is not None,
        "run_lifecycle_stage": run.lifecycle_stage if run else "",
        "datasets": datasets,
    }


def deletion_gates(candidate: dict, policy: dict, *, now=None) -> list[dict]:
    """A version may be deleted only when it is Archived, holds no alias, and was archived (MLflow's
    last update of the version) at least the policy's delete_after_days ago."""
    days = int(policy.get("delete_after_days") or 0)
    updated_ms = candidate.get("updated_ms")
    now = now or timezone.now()
    age_days = (now.timestamp() * 1000 - updated_ms) / 86_400_000 if updated_ms else None
    aliases = candidate.get("aliases") or []
    return [
        {"gate": "delete:archived", "passed": candidate.get("stage") == Stage.ARCHIVED,
         "detail": f"only an Archived version is deleted; it is in {candidate.get('stage')}"},
        {"gate": "delete:no_alias", "passed": not aliases,
         "detail": "a version holding an alias is never deleted" + (
             f"; it holds {', '.join('@' + a for a in aliases)}" if aliases else "")},
        {"gate": "delete:retention", "passed": age_days is not None and age_days >= days,
         "detail": f"archived at least {days} days ago; last changed "
                   f"{'?' if age_days is None else f'{age_days:.1f}'} days ago"},
    ]


# Versions in these stages, or holding any alias, are never touched by retention.
PROTECTED_STAGES = {Stage.STAGING, Stage.PRODUCTION}


def retention_plan(versions: list[dict], *, keep: int, delete_after_days: int, now=None) -> list[dict]:
    """The retention batch for one model: `versions` = [{"version", "stage", "aliases", "updated_ms"}].
    Versions in Staging/Production or holding an alias are protected and never listed. Of the others,
    the newest `keep` stay; older ones not yet Archived are archived; older Archived ones whose last
    change (the archiving) is at least `delete_after_days` old are deleted. keep=0: no retention."""
    if keep <= 0:
        return []
    now_ms = (now or timezone.now()).timestamp() * 1000
    free = sorted((v for v in versions if v["stage"] not in PROTECTED_STAGES and not v["aliases"]),
                  key=lambda v: -v["version"])
    steps = []
    for row in sorted(free[keep:], key=lambda v: v["version"]):
        if row["stage"] != Stage.ARCHIVED:
            steps.append({"version": row["version"], "action": "archive",
                          "why": f"older than the newest {keep} unprotected versions"})
        elif row["updated_ms"] and (now_ms - row["updated_ms"]) >= delete_after_days * 86_400_000:
            steps.append({"version": row["version"], "action": "delete",
                          "why": f"archived more than {delete_after_days} days ago"})
    return steps


def protected_now(version: int, pointers) -> str:
    """Why retention must not touch `version` in MLflow's state `pointers` ('' when it may)."""
    stage = pointers.stages.get(version)
    aliases = sorted(a for a, v in pointers.aliases.items() if v == version)
    if stage in PROTECTED_STAGES or aliases:
        held = ([stage] if stage in PROTECTED_STAGES else []) + ["@" + a for a in aliases]
        return f"v{version} holds {', '.join(held)}"
    return ""


def evaluate_gates(*, model, candidate: dict | None, incumbent: dict | None, target_stage: str = "",
                   target_alias: str = "", rollback: bool = False, policy: dict | None = None,
                   operation: str = Operation.MOVE, validation: dict | None = None) -> list[dict]:
    """[{"gate", "passed", "detail"}]. A demotion (None, Archived, Production -> Staging) and an alias
    removal have no gates; a deletion has its own (deletion_gates). `policy`: the rules to apply
    (default: the model's effective policy now); `validation`: the summary of the validation the policy
    requires (validation_evidence), None when it requires none."""
    if candidate is None:
        return [{"gate": "version_exists", "passed": False, "detail": "The version is not in the registry."}]
    policy = policy if policy is not None else effective_policy(model)
    if operation == Operation.DELETE:
        return deletion_gates(candidate, policy)
    if operation == Operation.REMOVE_ALIAS or is_demotion(target_stage=target_stage, candidate=candidate):
        return []
    results = []
    if is_production_like(target_stage=target_stage, target_alias=target_alias):
        for key, expected in sorted((policy.get("required_tags") or {}).items()):
            actual = candidate["tags"].get(key)
            results.append({"gate": f"tag:{key}", "passed": actual == str(expected),
                            "detail": f"tag {key} must be {expected!r}; it is {actual!r}"})
        if policy.get("require_validation") and validation_spec(policy) is None:
            results.append({"gate": "tier:validation", "passed": False,
                            "detail": f"risk tier {policy.get('risk_tier') or '?'} requires a validation before "
                                      "Production or a protected alias; the model's policy names no "
                                      "evaluation dataset"})
    for metric, bounds in sorted((policy.get("metric_thresholds") or {}).items()):
        value = _number(candidate["metrics"].get(metric))
        ok = value is not None
        text = []
        if "min" in bounds:
            ok = ok and value >= float(bounds["min"])
            text.append(f">= {bounds['min']}")
        if "max" in bounds:
            ok = ok and value <= float(bounds["max"])
            text.append(f"<= {bounds['max']}")
        results.append({"gate": f"threshold:{metric}", "passed": bool(ok),
                        "detail": f"{metric} must be {' and '.join(text)}; it is {value}"})
    metric = policy.get("compare_metric")
    if metric and not rollback and incumbent and incumbent["version"] != candidate["version"]:
        mine, theirs = _number(candidate["metrics"].get(metric)), _number(incumbent["metrics"].get(metric))
        higher = policy.get("higher_is_better", True)
        if theirs is None:
            ok, detail = True, f"the incumbent v{incumbent['version']} has no {metric}"
        else:
            ok = mine is not None and (mine >= theirs if higher else mine <= theirs)
            detail = f"{metric}: candidate {mine} vs incumbent v{incumbent['version']} {theirs}" \
                     f" ({'higher' if higher else 'lower'} is better)"
        results.append({"gate": f"not_worse:{metric}", "passed": ok, "detail": detail})
    if policy.get("require_lineage"):
        results.append(lineage_gate(candidate))
    if validation is not None:
        results.extend(validation_gates(validation))
    return results


# --------------------------------------------------------------------------------------------------
# Validation before promotion (governance.validation runs it; here: when it is required, and gates)
# --------------------------------------------------------------------------------------------------


def validation_spec(rules: dict) -> dict | None:
    """The policy's validation spec over the defaults (settings.VALIDATION_DEFAULTS); None when the
    policy asks for no validation (no spec, or one without an evaluation dataset)."""
    raw = rules.get("validation")
    if not isinstance(raw, dict) or not raw.get("dataset"):
        return None
    defaults = settings.VALIDATION_DEFAULTS
    return {**defaults, **raw, "latency": {**defaults.get("latency", {}), **(raw.get("latency") or {})}}


def validation_applies(spec: dict | None, *, target_stage: str = "", target_alias: str = "",
                       rollback: bool = False) -> bool:
    """Whether this target needs the validation: the targets the spec lists, else Production and the
    protected aliases. A rollback puts back a version that served before: it is not re-validated."""
    if spec is None or rollback or target_stage == Stage.ARCHIVED:
        return False
    if spec.get("targets"):
        return canonical_name(target_stage or target_alias) in {canonical_name(t) for t in spec["targets"]}
    return is_production_like(target_stage=target_stage, target_alias=target_alias)


def validation_evidence(*, model_name: str, version: int, spec: dict, incumbent: int | None) -> dict:
    run = validation_selectors.evidence_run(model_name=model_name, version=version, spec=spec, incumbent=incumbent)
    return validation_selectors.summary(run, spec=spec, incumbent=incumbent)


def validation_refusal(validation: dict) -> str:
    """Why a decision cannot rest on this validation ('' when it passed)."""
    status = validation.get("status")
    run = f" #{validation['run']}" if validation.get("run") else ""
    if status == "passed":
        return ""
    if status == "missing":
        return "the validation the policy requires has not run for this version (and this incumbent); run it first"
    if status in ("queued", "running"):
        return f"validation{run} is still {status}; wait for its result"
    return f"validation{run} failed: {validation.get('reason') or 'see its checks'}"


def validation_gates(validation: dict) -> list[dict]:
    refusal = validation_refusal(validation)
    gates = [{"gate": "validation", "passed": not refusal,
              "detail": refusal or f"validation #{validation['run']} passed"}]
    for check in validation.get("checks") or []:
        gates.append({"gate": f"validation:{check['name']}", "passed": bool(check["passed"]),
                      "detail": check.get("detail") or ""})
    return gates


def lineage_gate(candidate: dict) -> dict:
    """A live source run with a dataset input. A run deleted in MLflow (or gone from it) is no lineage:
    its record can be purged at any time."""
    if candidate.get("run_deleted") or candidate.get("run_lifecycle_stage") in ("deleted", "missing"):
        run_id = candidate.get("run_id")
        return {"gate": "lineage", "passed": False,
                "detail": f"a run with a dataset input is required; its run {run_id} is deleted in MLflow"}
    ok = candidate["run_present"] and bool(candidate["datasets"])
    return {"gate": "lineage", "passed": ok,
            "detail": "a run with a dataset input is required" + ("" if ok else "; none found")}


def _fresh_snapshot(found: gateway.VersionEvidence | None) -> dict | None:
    """One version as read from MLflow, in the shape the pages and the API render (the mirror's
    version_snapshot fields), plus the run's state, params and tags."""
    if found is None:
        return None
    row, run = found.version, found.run
    params = dict(run.params) if run else {}
    return {
        "version": row.version,
        "stage": row.stage,
        "status": row.status,
        "source": row.source,
        "run_id": row.run_id,
        "tags": dict(row.tags),
        "aliases": list(found.aliases),
        "metrics": dict(run.metrics) if run else {},
        "params_digest": hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16] if run else "",
        "run_present": run is not None,
        "datasets": [{"name": d.name, "digest": d.digest, "context": d.context, "source": d.source}
                     for d in (run.datasets if run else ())],
        "params": params,
        "run_status": run.status if run else "",
        "run_lifecycle_stage": run.lifecycle_stage if run else "",
        "run_deleted": bool(run and run.lifecycle_stage == "deleted"),
        "run_tags": dict(run.tags) if run else {},
        "updated_ms": row.updated_ms,
    }


def retention_evidence(*, model, model_name: str, plan: list[dict] | None = None) -> dict:
    """The retention batch MLflow's state calls for now (read fresh), and one gate: every version of
    the frozen `plan` (when given) is still due for the same action."""
    try:
        pointers = gateway.read_model_pointers(model_name)
    except gateway.MlflowUnavailable as exc:
        raise EvidenceUnavailable(f"MLflow could not be read, so there is no current evidence to decide on; "
                                  f"nothing was changed. Try again when MLflow answers. ({exc})") from exc
    policy = policy_snapshot(model)
    rules = policy["rules"]
    fresh = retention_plan(versions_of(pointers), keep=int(rules.get("retention_keep") or 0),
                           delete_after_days=int(rules.get("delete_after_days") or 0))
    gates = []
    if plan is not None:
        due = {(s["version"], s["action"]) for s in fresh}
        stale = [f"v{s['version']} {s['action']}" for s in plan if (s["version"], s["action"]) not in due]
        gates.append({"gate": "retention:still_due", "passed": not stale,
                      "detail": "every listed version is still due" + (f"; no longer: {', '.join(stale)}"
                                                                       if stale else "")})
    read_at = timezone.now().isoformat()
    return {"source": "mlflow", "read_at": read_at, "captured_at": read_at, "candidate": None, "incumbent": None,
            "gates": gates, "policy": policy, "plan": fresh}


def versions_of(pointers) -> list[dict]:
    return [{"version": v, "stage": stage, "updated_ms": pointers.updated_ms.get(v),
             "aliases": sorted(a for a, held in pointers.aliases.items() if held == v)}
            for v, stage in pointers.stages.items()]


def fresh_evidence(*, model, model_name: str, version: int, target_stage: str = "", target_alias: str = "",
                   rollback: bool = False, operation: str = Operation.MOVE, plan: list[dict] | None = None) -> dict:
    """Read from MLflow now what the gates judge, and judge it under the policy in force now.
    Raises EvidenceUnavailable when MLflow does not answer (never falls back to the mirror)."""
    if operation == Operation.RETENTION:
        return retention_evidence(model=model, model_name=model_name, plan=plan)
    try:
        read = gateway.read_decision_evidence(model_name, int(version), target_stage=target_stage,
                                              target_alias=target_alias)
    except gateway.MlflowUnavailable as exc:
        raise EvidenceUnavailable(f"MLflow could not be read, so there is no current evidence to decide on; "
                                  f"nothing was changed. Try again when MLflow answers. ({exc})") from exc
    policy = policy_snapshot(model)
    candidate, incumbent = _fresh_snapshot(read.candidate), _fresh_snapshot(read.incumbent)
    validation = None
    spec = validation_spec(policy["rules"])
    # Validation judges a version going up; a removal, a deletion or a demotion does not load a model.
    if candidate is not None and operation == Operation.MOVE and not is_demotion(
            target_stage=target_stage, candidate=candidate) and validation_applies(
            spec, target_stage=target_stage, target_alias=target_alias, rollback=rollback):
        holder = (incumbent or {}).get("version")
        validation = validation_evidence(model_name=model_name, version=int(version), spec=spec,
                                         incumbent=holder if holder != int(version) else None)
    gates = evaluate_gates(model=model, candidate=candidate, incumbent=incumbent, target_stage=target_stage,
                           target_alias=target_alias, rollback=rollback, policy=policy["rules"],
                           operation=operation, validation=validation)
    read_at = read.read_at.isoformat()
    evidence = {"source": "mlflow", "read_at": read_at, "captured_at": read_at, "candidate": candidate,
                "incumbent": incumbent, "gates": gates, "policy": policy}
    if validation is not None:
        evidence["validation"] = validation
    return evidence


# Compared between the evidence frozen at approval and the evidence read at deploy. A field the frozen
# evidence does not hold (recorded before it was collected) is not compared: absence is not a change.
_SCALAR_FIELDS = ("status", "stage", "source", "run_id", "run_present", "run_status",
                  "run_lifecycle_stage", "run_deleted", "aliases", "datasets")
_KEYED_FIELDS = ("tags", "metrics", "params", "run_tags")


def evidence_changes(frozen: dict, fresh: dict) -> list[dict]:
    """What differs between two evidence records: [{"what": "candidate.metrics.auc", "old", "new"}]."""
    changes: list[dict] = []
    for side in ("candidate", "incumbent"):
        old, new = frozen.get(side), fresh.get(side)
        if old is None or new is None or old.get("version") != new.get("version"):
            if (old or {}).get("version") != (new or {}).get("version"):
                changes.append({"what": f"{side}.version", "old": (old or {}).get("version"),
                                "new": (new or {}).get("version")})
            continue
        for name in _SCALAR_FIELDS:
            if name in old and old[name] != new.get(name):
                changes.append({"what": f"{side}.{name}", "old": old[name], "new": new.get(name)})
        for name in _KEYED_FIELDS:
            if name not in old:
                continue
            before, after = old[name] or {}, new.get(name) or {}
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    changes.append({"what": f"{side}.{name}.{key}", "old": before.get(key), "new": after.get(key)})
    if "validation" in frozen:
        old_v, new_v = frozen.get("validation") or {}, fresh.get("validation") or {}
        for key in ("status", "run", "spec_digest"):
            if old_v.get(key) != new_v.get(key):
                changes.append({"what": f"validation.{key}", "old": old_v.get(key), "new": new_v.get(key)})
    old_rules = (frozen.get("policy") or {}).get("rules")
    new_rules = (fresh.get("policy") or {}).get("rules") or {}
    if old_rules is not None:
        for key in sorted(set(old_rules) | set(new_rules)):
            if old_rules.get(key) != new_rules.get(key):
                changes.append({"what": f"policy.{key}", "old": old_rules.get(key), "new": new_rules.get(key)})
    return changes


def newly_failing(frozen_gates: list[dict] | None, gates: list[dict]) -> list[dict]:
    """Gates that fail now and did not fail when the evidence was frozen (a gate that failed then and
    was approved with an override does not send the request back for failing still)."""
    failed_then = {g["gate"] for g in (frozen_gates or []) if not g["passed"]}
    return [g for g in failing(gates) if g["gate"] not in failed_then]


def failing(gates: list[dict]) -> list[dict]:
    return [g for g in gates if not g["passed"]]


def _has_approved(req: PromotionRequest, username: str, *, live_only: bool) -> bool:
    """Whether `username` approved `req` (live_only: an approval not superseded by a re-approval). Reads
    prefetched approvals when the caller prefetched them (the inbox count), else asks the database."""
    prefetched = getattr(req, "_prefetched_objects_cache", {}).get("approvals")
    if prefetched is not None:
        return any(a.approver_username == username and (not live_only or a.superseded_at is None) for a in prefetched)
    approvals = req.approvals.filter(approver_username=username)
    return (approvals.filter(superseded_at__isnull=True) if live_only else approvals).exists()


def transition_refusal(user, req: PromotionRequest, action: str, *, checker=None) -> Exception | None:
    """Why `user` may not `action` this request now, as the error a service raises (None: allowed).
    Order: permission first (a user without the role learns nothing more), then state, then SoD.
    `checker` (a prefetched guardian ObjectPermissionChecker) only caches object grants."""
    if not getattr(user, "is_authenticated", False):
        return PermissionDenied("Sign in first.")
    model = req.model
    if action == "cancel":
        if not (user.pk == req.requester_id or user.is_superuser):
            return PermissionDenied("Only the requester or an admin may cancel a request.")
        if req.state not in (RequestState.PENDING, RequestState.APPROVED, RequestState.FAILED):
            return TransitionNotAllowed(f"A {req.state} request cannot be cancelled.")
        return None
    perm_action = {"approve": "approve", "reject": "approve", "deploy": "deploy", "review": "approve"}[action]
    if model is None or not can(user, perm_action, model, checker=checker):
        return PermissionDenied(f"You may not {action} requests for {req.model_name}.")
    if action == "review":
        if not req.emergency or req.reviewed_at is not None:
            return TransitionNotAllowed("There is no open emergency review on this request.")
        if req.state not in (RequestState.DEPLOYED, RequestState.FAILED, RequestState.CANCELLED):
            return TransitionNotAllowed(f"The emergency deploy is still {req.state}; review it once it ends.")
        if user.pk == req.requester_id:
            return PolicyViolation("Separation of duties: whoever broke the glass does not review it.")
        return None
    if action in ("approve", "reject"):
        if req.state != RequestState.PENDING:
            return TransitionNotAllowed(f"A {req.state} request cannot be {action}d.")
        if user.pk == req.requester_id:
            return PolicyViolation("Separation of duties: nobody approves or rejects their own request.")
        if action == "approve" and _has_approved(req, user.get_username(), live_only=True):
            return TransitionNotAllowed("You have already approved this request.")
        if action == "approve":
            return blocking_finding_refusal(req) or model_card_refusal(req)
        return None
    if req.state == RequestState.DEPLOYING and req.lease_live(timezone.now()):
        return Conflict(deploy_in_progress(req))
    # A 'deploying' request whose lease expired lost its deployer (a crash): the next deploy takes it
    # over, and settles the stalled attempt from MLflow's state before writing anything.
    if req.state not in (RequestState.APPROVED, RequestState.FAILED, RequestState.DEPLOYING):
        return TransitionNotAllowed(f"A {req.state} request cannot be deployed.")
    if not req.emergency and (refusal := blocking_finding_refusal(req)):
        return refusal
    if request_is_production_like(req) and not req.emergency:
        # Break-glass: the emergency's own requester deploys it (the review comes after).
        # Every approval counts here, superseded ones too: whoever approved this request once does not deploy it.
        if user.pk == req.requester_id:
            return PolicyViolation("Separation of duties: the requester may not deploy a Production or "
                                   "protected-alias target.")
        if _has_approved(req, user.get_username(), live_only=False):
            return PolicyViolation("Separation of duties: an approver may not deploy a Production or "
                                   "protected-alias target.")
    return None


def blocking_finding_refusal(req: PromotionRequest) -> Exception | None:
    """A version going up (not a demotion, removal or deletion) waits while a blocking finding on it or
    on its model is open (governance.risk): closing it needs acceptance by someone other than its owner."""
    if req.operation != Operation.MOVE or is_demotion(target_stage=req.target_stage,
                                                      candidate=(req.evidence or {}).get("candidate")):
        return None
    blocking = getattr(req, "_risk_blocking", None)  # annotated on lists (inbox): no query per row
    if blocking is None:
        blocking = risk_selectors.blocking_findings(req.model, req.version)
    if not blocking:
        return None
    names = ", ".join(f"#{f.pk}" + (f" on v{f.version}" if f.version else " on the model")
                      + f" (owner {f.owner_username}, due {f.due_date:%Y-%m-%d})" for f in blocking)
    return PolicyViolation(f"Blocking finding {names} is open: v{req.version} cannot go up until it is closed "
                           "and its closure accepted by someone other than its owner.")


def model_card_refusal(req: PromotionRequest) -> Exception | None:
    """Where the tier gates approval on the card (governance.cards, Tier 1 by default), a version going
    up waits while its approved card lacks a section the tier's template requires."""
    if req.operation != Operation.MOVE or is_demotion(target_stage=req.target_stage,
                                                      candidate=(req.evidence or {}).get("candidate")):
        return None
    gaps = getattr(req, "_card_gaps", False)  # annotated on lists (inbox): no query per row
    if gaps is False:
        gaps = card_selectors.approval_gaps(req.model, req.version) if req.model is not None else None
    if not gaps:
        return None
    return PolicyViolation(f"The model card of v{req.version} lacks required section(s): {', '.join(gaps)}. "
                           f"Its {risk_selectors.tier_label(risk_selectors.tier_of(req.model))} card must be "
                           "complete (and approved) before this version is approved.")


def deploy_in_progress(req: PromotionRequest) -> str:
    started = timezone.localtime(req.lease_started_at).strftime("%H:%M") if req.lease_started_at else "?"
    return f"A deploy of this request is in progress (started {started} by {req.lease_holder or 'someone'})."


def request_actions(user, req: PromotionRequest, *, checker=None) -> list[str]:
    """What this user may do now on this request (a subset of approve, reject, cancel, deploy): the
    buttons shown are exactly these, and the services refuse the rest with the same reasons."""
    return [a for a in ("approve", "reject", "cancel", "deploy", "review")
            if transition_refusal(user, req, a, checker=checker) is None]
