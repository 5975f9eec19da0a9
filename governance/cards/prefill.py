"""A new card's first text, from the evidence the console holds: the mirror (params, metrics per split,
datasets with digests, the run and its code), the lineage's gaps, the latest validation, what the model
needs to run (signature, requirements: read from MLflow's small model files by a worker), the approvals on
the record and the findings. Values are quoted as code so that nothing read from MLflow is taken for
markdown or HTML."""

from __future__ import annotations

from governance.audit.models import AuditEvent
from governance.risk import selectors as risk_selectors
from governance.validation import display as validation_display
from governance.validation import selectors as validation_selectors
from registry_ui.pages import lineage as lineage_pages
from registry_ui.pages import selectors as pages


def _code(value, limit: int = 200) -> str:
    text = " ".join(str(value).split()).replace("`", "'").replace("|", "/")
    return f"`{text[:limit]}`" if text else "`(empty)`"


def _schema(spec) -> list[str]:
    if not spec:
        return []
    items = spec if isinstance(spec, list) else spec.get("inputs", []) if isinstance(spec, dict) else []
    return [f"- {_code(i.get('name') or '(unnamed)')}: {_code(i.get('type') or '?')}" for i in items
            if isinstance(i, dict)]


def _needs(mv) -> dict:
    found = validation_display.model_needs(mv)
    if found["needs"] is not None:
        return found["needs"]
    if found["pending"]:
        return {"error": "not read yet: a worker is reading the model's files from MLflow"}
    return {"error": found["error"]}


def evidence_sections(user, model_name: str, version: int) -> dict[str, str]:
    """{section key: markdown} for the sections evidence can fill; the others start empty."""
    page = pages.version_page(user, model_name, version)
    mv, model, run = page.version, page.model, page.run
    needs = _needs(mv)
    out: dict[str, str] = {}
    if model.description:
        out["purpose"] = model.description.strip()

    signature = needs.get("signature") if "error" not in needs else None
    if signature:
        out["inputs"] = "Signature inputs:\n\n" + ("\n".join(_schema(needs.get("inputs"))) or "- (none declared)")
        out["output"] = "Signature outputs:\n\n" + ("\n".join(_schema(needs.get("outputs"))) or "- (none declared)")
    else:
        why = needs.get("error") or "the model declares no signature"
        out["inputs"] = f"_No signature read from MLflow ({_code(why, 160)}): describe the inputs._"

    perf = []
    if page.metric_rows:
        perf.append("| Metric | " + " | ".join(page.splits) + " |")
        perf.append("|---|" + "---|" * len(page.splits))
        perf += [f"| {_code(r.name)} | " + " | ".join(r.values.get(s) or "" for s in page.splits) + " |"
                 for r in page.metric_rows]
    else:
        perf.append("_No metrics mirrored for this version._")
    run_v = validation_selectors.latest_finished(model_name=model_name, version=version)
    if run_v is not None:
        heads = ", ".join(f"{k} {_code(v)}" for k, v in validation_selectors.headline(run_v).items())
        perf.append(f"\nValidation #{run_v.pk}: **{run_v.status}**" + (f" ({heads})" if heads else ""))
    out["performance"] = "\n".join(perf)

    lines = []
    if run is not None:
        lines.append(f"- Run {_code(run.run_id)}" + (f" ({_code(run.run_name)})" if run.run_name else "")
                     + (f", experiment {_code(run.experiment_name)}" if run.experiment_name else ""))
        lines.append(f"- Code: {_code(run.entry_point or run.source_name or 'unknown')}, git commit "
                     f"{_code(run.git_commit or 'unknown')}")
    else:
        lines.append(f"- Run: {_code(mv.run_id or 'none')} (not mirrored)")
    for d in page.datasets:
        lines.append(f"- Dataset {_code(d.name)} ({_code(d.context or 'unknown context')}), digest "
                     f"{_code(d.digest or 'unknown')}, source {_code(d.source, 120)}")
    if not page.datasets:
        lines.append("- No dataset logged for the run.")
    lin = lineage_pages.version_lineage(mv, pages.visible_scope(user))
    for gap in lin.gaps:
        lines.append(f"- Lineage gap: {_code(gap.label)} ({_code(gap.detail)})")
    if page.params:
        lines.append("\nParameters:\n")
        lines += [f"- {_code(k)} = {_code(v)}" for k, v in page.params]
    if "error" not in needs:
        reqs = needs.get("requirements") or []
        lines.append("\nRequirements" + (f" (Python {needs.get('python_version')})" if needs.get("python_version")
                                         else "") + ":\n")
        # Each requirement is {"file", "line", "pinned"} (registry_ui/mirror/validate_child._requirements).
        lines += [f"- {_code(r.get('line'))}" + ("" if r.get("pinned") else " (not pinned)")
                  for r in reqs[:40]] or ["- (none listed)"]
    out["training_data"] = "\n".join(lines)

    val = []
    if run_v is not None:
        val.append(f"Validation #{run_v.pk} {run_v.status}" + (f": {_code(run_v.reason, 300)}" if run_v.reason else ""))
        val += [f"- {'passed' if c.get('passed') else 'FAILED'}: {_code(c.get('name'))} "
                f"{_code(c.get('detail') or '', 160)}" for c in (run_v.result or {}).get("checks", [])]
    else:
        val.append("No validation has run for this version.")
    approvals = AuditEvent.objects.filter(model_name=model_name, version=version,
                                          action="request.approved").order_by("seq")
    val.append("\nApprovals on the record:\n")
    val += [f"- {_code(e.actor_username)} on {e.timestamp:%Y-%m-%d} (request #{e.request_id})" for e in approvals] \
        or ["- none yet"]
    findings = list(risk_selectors.findings_of(model, version))
    val.append("\nFindings:\n")
    val += [f"- #{f.pk} {f.severity}, {f.state}, owner {_code(f.owner_username)}"
            + (f" on v{f.version}" if f.version else " on the model") + f": {_code(f.description, 300)}"
            for f in findings] or ["- none"]
    out["validation"] = "\n".join(val)
    return out
