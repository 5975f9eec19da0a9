"""The comparison page's assembly: which versions were picked, the pandas comparison, the chart
figures and the lazily fetched metric histories. Kept out of the view so the view stays thin."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import Http404, HttpRequest

from registry_ui.mirror.history import history_frame, history_status
from registry_ui.pages import charts, selectors
from registry_ui.pages.compare import compare as build_comparison


@dataclass
class Selection:
    refs: list[selectors.VersionRef] = field(default_factory=list)
    items: list[selectors.CompareItem] = field(default_factory=list)
    error: str = ""


def selection_from_request(request: HttpRequest) -> Selection:
    """Versions from `v=model:version` (repeated), or `model=...&versions=1,2,3` / `versions=a:1,b:2`.
    An unknown or out-of-scope version is a 404 (raised by the selector)."""
    selection = Selection()
    try:
        selection.refs = selectors.parse_version_refs(
            model=request.GET.get("model", "") if request.GET.getlist("versions") else "",
            versions=[*request.GET.getlist("v"), *request.GET.getlist("versions")],
        )
    except selectors.BadSelection as exc:
        selection.error = str(exc)
        return selection
    selection.items = selectors.compare_items(request.user, selection.refs)
    return selection


def comparison_context(request: HttpRequest, selection: Selection) -> dict:
    user = request.user
    picker_model = None
    picker_name = request.GET.get("pick") or (request.GET.get("model") if not request.GET.getlist("versions") else "")
    if not picker_name and selection.items:
        picker_name = selection.items[0].ref.model
    scope_names = selectors.model_names_for_picker(user)
    if picker_name:
        try:
            picker_model = selectors.model_for_user(user, picker_name)
        except Http404:  # an unknown or out-of-scope picker model just offers no versions
            picker_model = None
    candidates = selectors.compare_candidates(user, picker_model) if picker_model else []
    chosen = {(r.model, r.version) for r in selection.refs}
    context = {
        "selection": selection,
        "scope_names": scope_names,
        "picker_model": picker_model,
        "candidates": [(mv, (picker_model.name, mv.version) in chosen) for mv in candidates],
        "others_chosen": [r for r in selection.refs if not picker_model or r.model != picker_model.name],
        "show_all_params": request.GET.get("params") == "all",
    }
    if selection.error or len(selection.items) < 2:
        return context
    comparison = build_comparison(selection.items, request.GET.get("baseline"))
    metric_keys = list(comparison.metrics.index)
    chosen_metric = request.GET.get("metric")
    if chosen_metric not in metric_keys:
        chosen_metric = _default_metric(metric_keys)
    figures = {}
    for i, fig in enumerate(charts.grouped_metric_bars(comparison.metrics, split_of=selectors.split_metric)):
        figures[f"bars-{i}"] = fig
    parcoords = charts.parallel_coordinates(comparison.params, comparison.metrics, chosen_metric) \
        if chosen_metric else None
    if parcoords:
        figures["parcoords"] = parcoords
    labels_by_run: dict[str, list[str]] = {}
    for item in selection.items:
        if item.run:
            labels_by_run.setdefault(item.run.run_id, []).append(item.label)
    status = history_status(list(labels_by_run))
    curves = charts.history_curves(history_frame(labels_by_run))
    for i, fig in enumerate(curves):
        figures[f"history-{i}"] = fig
    query = request.GET.copy()
    context.update({
        "comparison": comparison,
        "param_rows": comparison.param_rows if context["show_all_params"] else comparison.differing_param_rows,
        "hidden_params": len(comparison.param_rows) - len(comparison.differing_param_rows),
        "figures": figures,
        "bar_ids": [k for k in figures if k.startswith("bars-")],
        "history_ids": [k for k in figures if k.startswith("history-")],
        "history_status": status,
        "metric_keys": metric_keys,
        "chosen_metric": chosen_metric,
        "query": query,
        "csv_query": query.urlencode(),
    })
    return context


def _default_metric(keys: list[str]) -> str | None:
    for prefix in ("test_", "val_", "eval_", ""):
        for key in keys:
            if key.startswith(prefix) and not key.startswith("train"):
                return key
    return keys[0] if keys else None
