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
from governance.errors import Conflict, EvidenceUnavailable, PolicyViolation, TransitionNotAllowed
from governance.validation import selectors as validation_selectors
from governance.workflow.models import PromotionRequest, RequestState
from registry_ui.mirror import client as gateway
from registry_ui.mirror.models import DatasetInput, ModelAlias, ModelVersion, RunSnapshot, Stage

STAGE_TARGETS = [Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED]

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
    return is_production_like(target_stage=req.target_stage, target_alias=req.target_alias)


def effective_policy(model) -> dict:
    """Global defaults (settings.WORKFLOW_DEFAULT_GATES) overridden by the model's own ModelPolicy."""
    from governance.workflow.models import ModelPolicy

    policy = dict(settings.WORKFLOW_DEFAULT_GATES)
    policy["quorum"] = settings.PRODUCTION_QUORUM
    own = ModelPolicy.objects.filter(model_id=getattr(model, "pk", None)).first() if model else None
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


def evaluate_gates(*, model, candidate: dict | None, incumbent: dict | None, target_stage: str = "",
                   target_alias: str = "", rollback: bool = False, policy: dict | None = None,
                   validation: dict | None = None) -> list[dict]:
    """[{"gate", "passed", "detail"}]; Archived (a demotion) has no gates. `policy`: the rules to
    apply (default: the model's effective policy now); `validation`: the summary of the validation the
    policy requires (validation_evidence), None when it requires none."""
    if target_stage == Stage.ARCHIVED:
        return []
    if candidate is None:
        return [{"gate": "version_exists", "passed": False, "detail": "The version is not in the registry."}]
    policy = policy if policy is not None else effective_policy(model)
    results = []
    if is_production_like(target_stage=target_stage, target_alias=target_alias):
        for key, expected in sorted((policy.get("required_tags") or {}).items()):
            actual = candidate["tags"].get(key)
            results.append({"gate": f"tag:{key}", "passed": actual == str(expected),
                            "detail": f"tag {key} must be {expected!r}; it is {actual!r}"})
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
    }


def fresh_evidence(*, model, model_name: str, version: int, target_stage: str = "", target_alias: str = "",
                   rollback: bool = False) -> dict:
    """Read from MLflow now what the gates judge, and judge it under the policy in force now.
    Raises EvidenceUnavailable when MLflow does not answer (never falls back to the mirror)."""
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
    if candidate is not None and validation_applies(spec, target_stage=target_stage, target_alias=target_alias,
                                                    rollback=rollback):
        holder = (incumbent or {}).get("version")
        validation = validation_evidence(model_name=model_name, version=int(version), spec=spec,
                                         incumbent=holder if holder != int(version) else None)
    gates = evaluate_gates(model=model, candidate=candidate, incumbent=incumbent, target_stage=target_stage,
                           target_alias=target_alias, rollback=rollback, policy=policy["rules"],
                           validation=validation)
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


def transition_refusal(user, req: PromotionRequest, action: str) -> Exception | None:
    """Why `user` may not `action` this request now, as the error a service raises (None: allowed).
    Order: permission first (a user without the role learns nothing more), then state, then SoD."""
    if not getattr(user, "is_authenticated", False):
        return PermissionDenied("Sign in first.")
    model = req.model
    if action == "cancel":
        if not (user.pk == req.requester_id or user.is_superuser):
            return PermissionDenied("Only the requester or an admin may cancel a request.")
        if req.state not in (RequestState.PENDING, RequestState.APPROVED, RequestState.FAILED):
            return TransitionNotAllowed(f"A {req.state} request cannot be cancelled.")
        return None
    perm_action = {"approve": "approve", "reject": "approve", "deploy": "deploy"}[action]
    if model is None or not can(user, perm_action, model):
        return PermissionDenied(f"You may not {action} requests for {req.model_name}.")
    if action in ("approve", "reject"):
        if req.state != RequestState.PENDING:
            return TransitionNotAllowed(f"A {req.state} request cannot be {action}d.")
        if user.pk == req.requester_id:
            return PolicyViolation("Separation of duties: nobody approves or rejects their own request.")
        if action == "approve" and req.approvals.filter(approver_username=user.get_username(),
                                                        superseded_at__isnull=True).exists():
            return TransitionNotAllowed("You have already approved this request.")
        return None
    if req.state == RequestState.DEPLOYING and req.lease_live(timezone.now()):
        return Conflict(deploy_in_progress(req))
    # A 'deploying' request whose lease expired lost its deployer (a crash): the next deploy takes it
    # over, and settles the stalled attempt from MLflow's state before writing anything.
    if req.state not in (RequestState.APPROVED, RequestState.FAILED, RequestState.DEPLOYING):
        return TransitionNotAllowed(f"A {req.state} request cannot be deployed.")
    if request_is_production_like(req):
        # Every approval counts here, superseded ones too: whoever approved this request once does not deploy it.
        if user.pk == req.requester_id:
            return PolicyViolation("Separation of duties: the requester may not deploy a Production or "
                                   "protected-alias target.")
        if req.approvals.filter(approver_username=user.get_username()).exists():
            return PolicyViolation("Separation of duties: an approver may not deploy a Production or "
                                   "protected-alias target.")
    return None


def deploy_in_progress(req: PromotionRequest) -> str:
    started = timezone.localtime(req.lease_started_at).strftime("%H:%M") if req.lease_started_at else "?"
    return f"A deploy of this request is in progress (started {started} by {req.lease_holder or 'someone'})."


def request_actions(user, req: PromotionRequest) -> list[str]:
    """What this user may do now on this request (a subset of approve, reject, cancel, deploy): the
    buttons shown are exactly these, and the services refuse the rest with the same reasons."""
    return [a for a in ("approve", "reject", "cancel", "deploy") if transition_refusal(user, req, a) is None]
