"""What the request form offers to pick (a presentation selector: reads only).

- models: the registered models the user may see and request for (type-ahead through a <datalist>);
- versions of the chosen model, each with its stage, aliases and key metrics;
- targets: the stages, the model's existing aliases (with the version holding each), and a new alias;
- a preview of the gates the chosen target applies, judged on the mirror. The request itself reads
  MLflow again and judges then (policies.fresh_evidence); the preview only says what to expect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from governance.access import can, visible_models
from governance.workflow.forms import NEW_ALIAS
from governance.workflow.policies import STAGE_TARGETS, evaluate_gates, is_production_like, version_snapshot
from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel
from registry_ui.pages import selectors as registry

MAX_MODELS = 500  # names in the type-ahead list; past that, typing the name still works


@dataclass
class VersionOption:
    version: int
    label: str


@dataclass
class TargetOption:
    value: str
    label: str


@dataclass
class Pickers:
    models: list[str]
    model: RegisteredModel | None = None
    model_name: str = ""
    problem: str = ""
    versions: list[VersionOption] = field(default_factory=list)
    targets: list[TargetOption] = field(default_factory=list)
    version: int | None = None
    target_choice: str = ""
    new_alias: bool = False
    is_stage: bool = False
    gates: list[dict] | None = None
    incumbent: int | None = None
    production_like: bool = False


def _target_parts(choice: str, alias: str) -> tuple[str, str]:
    if choice == NEW_ALIAS:
        return "", alias
    kind, _, name = choice.partition(":")
    return (name, "") if kind == "stage" else ("", name)


def _incumbent(model, target_stage: str, target_alias: str) -> int | None:
    if target_alias:
        row = ModelAlias.objects.filter(model=model, alias=target_alias).first()
        return row.version if row else None
    row = ModelVersion.objects.filter(model=model, stage=target_stage).order_by("-version").first()
    return row.version if row else None


def request_pickers(user, *, model_name: str = "", version=None, target_choice: str = "",
                    target_alias: str = "") -> Pickers:
    visible = visible_models(user, RegisteredModel.objects.all())
    p = Pickers(models=list(visible.order_by("name").values_list("name", flat=True)[:MAX_MODELS]),
                model_name=model_name, target_choice=target_choice)
    if not model_name:
        return p
    model = visible.filter(name=model_name).first()
    if model is None:
        p.problem = f"No registered model named {model_name!r} that you may see. Pick one from the list."
        return p
    if not can(user, "request", model):
        p.problem = f"You may not request promotions for {model_name}."
        return p
    p.model = model
    page = registry.model_page(user, model.name)
    for row in page.rows:
        mv = row.version
        parts = [f"v{mv.version}", mv.stage or "None"]
        parts += [f"@{a}" for a in row.aliases]
        metrics = ", ".join(f"{k} {text}" for k, (text, _) in zip(page.key_metrics[:3], row.key_metrics[:3],
                                                                 strict=False) if text)
        p.versions.append(VersionOption(version=mv.version, label=" · ".join(parts) + (f" · {metrics}" if metrics
                                                                                      else "")))
    holders = {a.alias: a.version for a in page.aliases}
    for stage in STAGE_TARGETS:
        now = page.stage_holders.get(stage) or []
        held = f" (now v{', v'.join(map(str, now))})" if now else ""
        p.targets.append(TargetOption(value=f"stage:{stage}", label=f"Stage {stage}{held}"))
    for alias, held_by in sorted(holders.items()):
        p.targets.append(TargetOption(value=f"alias:{alias}", label=f"@{alias} (now v{held_by})"))
    p.targets.append(TargetOption(value=NEW_ALIAS, label="A new alias…"))
    try:
        p.version = int(version) if version not in (None, "") else None
    except (TypeError, ValueError):
        p.version = None
    p.new_alias = target_choice == NEW_ALIAS
    p.is_stage = target_choice.startswith("stage:")
    target_stage, alias = _target_parts(target_choice, target_alias.strip())
    if p.version and (target_stage or alias):
        p.production_like = is_production_like(target_stage=target_stage, target_alias=alias)
        p.incumbent = _incumbent(model, target_stage, alias)
        candidate = version_snapshot(model, p.version)
        incumbent = version_snapshot(model, p.incumbent) if p.incumbent else None
        p.gates = evaluate_gates(model=model, candidate=candidate, incumbent=incumbent, target_stage=target_stage,
                                 target_alias=alias)
    return p
