"""Lineage of one model version, read from the mirror: version -> run -> experiment, dataset inputs
(with digest and context), source code (entry point, git commit), parent run, logged model, and the
other versions trained on the same data. Whatever is unknown becomes an explicit GAP node, because
a reviewer must see missing lineage, not an absence of boxes.

`version_lineage(...)` builds the graph model (a fixed number of queries); `layout_svg(...)` places it
in columns for the inline SVG the lineage template draws server-side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from registry_ui.mirror.models import DatasetInput, ModelVersion, RegisteredModel, RunSnapshot

TRAINING_CONTEXTS = {"training", "train"}


@dataclass
class Node:
    id: str
    kind: str  # version | run | experiment | dataset | source | parent_run | logged_model | shared_version | gap
    label: str
    detail: str = ""
    url: str = ""
    gap: bool = False
    column: int = 0
    # filled by layout_svg
    x: int = 0
    y: int = 0
    short_label: str = ""
    short_detail: str = ""


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""


@dataclass
class Lineage:
    version: ModelVersion
    run: RunSnapshot | None
    datasets: list[DatasetInput]
    parent_run: RunSnapshot | None
    shared: list[ModelVersion]
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    @property
    def gaps(self) -> list[Node]:
        return [n for n in self.nodes if n.gap]

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def _ui(path: str) -> str:
    base = getattr(settings, "REGISTRY_MLFLOW_UI_URL", "")
    return f"{base}/#/{path}" if base else ""


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def version_lineage(version: ModelVersion, scope: QuerySet[RegisteredModel]) -> Lineage:
    """The lineage graph of `version`. `scope`: the models the viewer may see (links to other versions
    stay inside it)."""
    model = version.model
    run = RunSnapshot.objects.filter(run_id=version.run_id).first() if version.run_id else None
    datasets = list(run.datasets.all()) if run else []
    parent = RunSnapshot.objects.filter(run_id=run.parent_run_id).first() if run and run.parent_run_id else None
    training = [d for d in datasets if d.context.lower() in TRAINING_CONTEXTS] or datasets
    digests = {d.digest for d in training if d.digest}
    shared: list[ModelVersion] = []
    if digests:
        other_runs = (
            DatasetInput.objects.filter(digest__in=digests).exclude(run=run).values_list("run__run_id", flat=True)
        )
        shared = list(
            ModelVersion.objects.select_related("model").filter(run_id__in=other_runs, model__in=scope)
            .exclude(pk=version.pk).order_by("model__name", "-version")[:20]
        )
    lin = Lineage(version=version, run=run, datasets=datasets, parent_run=parent, shared=shared)
    add, link = lin.nodes.append, lin.edges.append
    here = reverse("registry:lineage", args=[model.name, version.version])
    vurl = reverse("registry:version_detail", args=[model.name, version.version])

    add(Node("version", "version", f"{_short(model.name, 22)} v{version.version}",
             f"stage {version.stage}" + (f", {version.status}" if version.status else ""), vurl, column=0))
    if not version.run_id:
        add(Node("gap-run", "gap", "No source run", "the version was registered without a run",
                 f"{here}#gaps", gap=True, column=1))
        link(Edge("version", "gap-run", "run"))
        return lin
    if run is None:
        add(Node("gap-run", "gap", f"Run {version.run_id[:12]} not mirrored",
                 "the run is unknown to the mirror (deleted, or not synced yet)", f"{here}#gaps", gap=True, column=1))
        link(Edge("version", "gap-run", "run"))
        return lin

    run_url = (_ui(f"experiments/{run.experiment_id}/runs/{run.run_id}") if run.experiment_id else "") \
        or version.run_link or f"{here}#details-run"
    if run.is_deleted:
        # Shown, and counted as a gap: MLflow may purge a deleted run, and the lineage gate refuses it.
        add(Node("run", "run", f"Run {run.run_name or run.run_id[:12]} (deleted)",
                 "deleted in MLflow" if run.lifecycle_stage == "deleted" else "gone from MLflow", run_url,
                 gap=True, column=1))
    else:
        add(Node("run", "run", f"Run {run.run_name or run.run_id[:12]}", f"{run.status or 'status unknown'}"
                 + (f", by {run.user}" if run.user else ""), run_url, column=1))
    link(Edge("version", "run", "trained by"))

    if run.experiment_id or run.experiment_name:
        add(Node("experiment", "experiment", f"Experiment {_short(run.experiment_name or run.experiment_id, 22)}",
                 f"id {run.experiment_id}", _ui(f"experiments/{run.experiment_id}") or f"{here}#details-run",
                 column=2))
    else:
        add(Node("gap-experiment", "gap", "Experiment unknown", "", f"{here}#gaps", gap=True, column=2))
    link(Edge("run", "experiment" if run.experiment_id or run.experiment_name else "gap-experiment", "in"))

    if datasets:
        for i, d in enumerate(datasets):
            add(Node(f"dataset-{i}", "dataset", f"Dataset {_short(d.name, 20)}",
                     f"{d.context or 'context unknown'} · digest {d.digest[:10]}", f"{vurl}#datasets", column=2))
            link(Edge("run", f"dataset-{i}", d.context or "input"))
    else:
        add(Node("gap-dataset", "gap", "No dataset logged", "training data unknown", f"{here}#gaps", gap=True,
                 column=2))
        link(Edge("run", "gap-dataset", "input"))

    if run.git_commit or run.entry_point or run.source_name:
        add(Node("source", "source", f"Code {_short(run.entry_point or run.source_name, 22)}",
                 f"git {run.git_commit[:10]}" if run.git_commit else "git commit unknown", f"{vurl}#source",
                 column=2))
        link(Edge("run", "source", "code"))
    if not run.git_commit:
        add(Node("gap-git", "gap", "No git commit", "source version unknown", f"{here}#gaps", gap=True, column=2))
        link(Edge("run", "gap-git", "code"))

    if run.parent_run_id:
        if parent is not None:
            add(Node("parent", "parent_run", f"Parent run {parent.run_name or parent.run_id[:12]}", parent.status,
                     _ui(f"experiments/{parent.experiment_id}/runs/{parent.run_id}") or f"{here}#details-run",
                     column=2))
        else:
            add(Node("parent", "parent_run", f"Parent run {run.parent_run_id[:12]}", "not mirrored",
                     _ui(f"experiments/{run.experiment_id}/runs/{run.parent_run_id}") or f"{here}#details-run",
                     column=2))
        link(Edge("run", "parent", "child of"))

    if run.logged_model_id:
        add(Node("logged-model", "logged_model", f"Logged model {run.logged_model_id[:12]}", "MLflow 3 logged model",
                 _ui(f"experiments/{run.experiment_id}/models/{run.logged_model_id}") or f"{here}#details-run",
                 column=2))
        link(Edge("run", "logged-model", "logged"))

    source_node = next((n.id for n in lin.nodes if n.kind == "dataset"), None)
    for j, other in enumerate(shared):
        add(Node(f"shared-{j}", "shared_version", f"{_short(other.model.name, 22)} v{other.version}",
                 "same training data", reverse("registry:lineage", args=[other.model.name, other.version]),
                 column=3))
        if source_node:
            link(Edge(source_node, f"shared-{j}", "also trained"))
    return lin


NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 230, 52, 96, 18, 16
# Characters of a node's title and detail that fit in NODE_W at the stylesheet's font sizes.
LABEL_CHARS, DETAIL_CHARS = 26, 34


def layout_svg(lin: Lineage) -> dict:
    """Place nodes in columns (x, y in px) and give edge paths; returns width/height/edges for the template."""
    columns: dict[int, list[Node]] = {}
    for n in lin.nodes:
        columns.setdefault(n.column, []).append(n)
    tallest = max(len(c) for c in columns.values())
    height = PAD * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP
    for col, nodes in columns.items():
        block = len(nodes) * NODE_H + (len(nodes) - 1) * ROW_GAP
        top = (height - block) // 2
        for i, n in enumerate(nodes):
            n.x = PAD + col * (NODE_W + COL_GAP)
            n.y = top + i * (NODE_H + ROW_GAP)
    width = PAD * 2 + (max(columns) + 1) * NODE_W + max(columns) * COL_GAP
    by_id = {n.id: n for n in lin.nodes}
    paths = []
    for e in lin.edges:
        a, b = by_id[e.source], by_id[e.target]
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x, b.y + NODE_H // 2
        mid = (x1 + x2) // 2
        # The label sits on the straight last stretch of its edge, right-aligned before the target: edges
        # fanning out of one node end at different targets, so their labels never share a spot (in the
        # middle, where the curves cross, they overlapped).
        paths.append({"d": f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2 - 10},{y2} L{x2},{y2}", "label": e.label,
                      "lx": x2 - 4, "ly": y2 - 5, "gap": b.gap})
    for n in lin.nodes:
        title = ("GAP: " if n.gap else "") + n.label
        n.short_label = title if len(title) <= LABEL_CHARS else title[: LABEL_CHARS - 1] + "…"
        n.short_detail = n.detail if len(n.detail or "") <= DETAIL_CHARS else n.detail[: DETAIL_CHARS - 1] + "…"
    return {"width": width, "height": height, "node_w": NODE_W, "node_h": NODE_H, "nodes": lin.nodes,
            "edges": paths}
