"""Reads for the registry pages and the comparison API. Every queryset starts from
`registry_ui.extensions.visible_models`, so a page shows only what the user may see.

Access rule (documented in README "Registry pages"): anonymous users are sent to the login page by
the views; a signed-in user for whom the visibility provider returns `queryset.none()` (no role at
all) gets 403 on every registry page; a model outside the user's scope (filtered out by the
provider) is 404, exactly like a model that does not exist.

Each selector runs a fixed number of queries, whatever the number of rows it returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from registry_ui import extensions
from registry_ui.filters import ModelFilterSet
from registry_ui.mirror.models import (
    DatasetInput,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RunSnapshot,
    Stage,
    SyncState,
)
from registry_ui.pages import formatting

# --------------------------------------------------------------------------------------------------
# Scope
# --------------------------------------------------------------------------------------------------


def visible_scope(user) -> QuerySet[RegisteredModel]:
    """The models the user may see; PermissionDenied when the user may see none at all (no role)."""
    qs = extensions.visible_models(user, RegisteredModel.objects.all())
    if qs.query.is_empty():
        raise PermissionDenied("You hold no role that lets you see the registry.")
    return qs


def model_for_user(user, name: str) -> RegisteredModel:
    model = visible_scope(user).filter(name=name).first()
    if model is None:
        raise Http404("No such model.")
    return model


# --------------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueFilters:
    q: str = ""
    stage: str = ""
    alias: str = ""
    tag: str = ""  # "key" (has the tag) or "key=value"

    @property
    def active(self) -> bool:
        return bool(self.q or self.stage or self.alias or self.tag)


def _count_versions():
    return Subquery(
        ModelVersion.objects.filter(model=OuterRef("pk")).order_by().values("model")
        .annotate(n=Count("pk")).values("n")[:1],
        output_field=IntegerField(),
    )


def catalogue_queryset(user, filters: CatalogueFilters) -> QuerySet[RegisteredModel]:
    # The API's FilterSet (registry_ui/filters.py): one meaning for q, stage, alias and tag everywhere.
    # CatalogueForm has already validated the values, so the FilterSet only applies them.
    params = {k: v for k, v in (("q", filters.q), ("stage", filters.stage), ("alias", filters.alias),
                                ("tag", filters.tag)) if v}
    return ModelFilterSet(data=params, queryset=visible_scope(user)).qs.order_by("name")


@dataclass
class CatalogueRow:
    model: RegisteredModel
    num_versions: int
    production_version: int | None
    champion_version: int | None
    aliases: list[ModelAlias]
    open_requests: int | None
    annotations: dict


def catalogue_page(user, filters: CatalogueFilters, *, page: int | str = 1,
                   per_page: int | None = None) -> tuple[Page, list[CatalogueRow]]:
    per_page = per_page or settings.REGISTRY_CATALOGUE_PAGE_SIZE
    # Two steps: page through bare ids (the database skips OFFSET rows cheaply), then annotate only the
    # rows shown; annotating the paged queryset itself would compute the subqueries for skipped rows too.
    paginator = Paginator(catalogue_queryset(user, filters).values_list("pk", flat=True), per_page)
    page_obj = paginator.get_page(page)
    ids = list(page_obj.object_list)
    models = list(
        RegisteredModel.objects.filter(pk__in=ids).order_by("name").annotate(
            num_versions=_count_versions(),
            production_version=Subquery(
                ModelVersion.objects.filter(model=OuterRef("pk"), stage=Stage.PRODUCTION)
                .order_by("-version").values("version")[:1]
            ),
            champion_version=Subquery(
                ModelAlias.objects.filter(model=OuterRef("pk"), alias=settings.REGISTRY_CHAMPION_ALIAS)
                .values("version")[:1]
            ),
        ).prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.order_by("alias")))
    ) if ids else []
    notes = extensions.catalogue_annotations(user, models) if models else {}
    rows = [
        CatalogueRow(
            model=m, num_versions=m.num_versions or 0, production_version=m.production_version,
            champion_version=m.champion_version, aliases=list(m.aliases.all()),
            open_requests=(notes.get(m.pk) or {}).get("open_requests"), annotations=notes.get(m.pk) or {},
        )
        for m in models
    ]
    return page_obj, rows


def catalogue_choices(user) -> dict:
    """Values for the filter drop-downs (stages are fixed; aliases in use in the user's scope)."""
    aliases = (
        ModelAlias.objects.filter(model__in=visible_scope(user)).order_by("alias")
        .values_list("alias", flat=True).distinct()[:200]
    )
    return {"stages": [s for s, _ in Stage.choices], "aliases": list(aliases)}


def sync_state() -> SyncState | None:
    """What every page's banner reads. Never get_or_create on a page read: a GET must not write. Without
    the last sync's report, which is JSON of every change it made (200 kB after a 1% change of 10,000
    models), decoded on every signed-in page."""
    return SyncState.objects.filter(pk=1).defer("last_report").first()


# --------------------------------------------------------------------------------------------------
# Metrics helpers
# --------------------------------------------------------------------------------------------------

SPLIT_PREFIXES = [
    ("train", ("train_", "training_")),
    ("val", ("val_", "valid_", "validation_")),
    ("test", ("test_",)),
    ("eval", ("eval_", "evaluation_")),
]
SPLITS = [name for name, _ in SPLIT_PREFIXES]


def split_metric(key: str) -> tuple[str, str]:
    """'val_accuracy' -> ('val', 'accuracy'); 'rmse' -> ('', 'rmse')."""
    for split, prefixes in SPLIT_PREFIXES:
        for prefix in prefixes:
            if key.startswith(prefix) and len(key) > len(prefix):
                return split, key[len(prefix):]
    return "", key


def metric_value(raw) -> float | None:
    """A stored metric as a float (NaN/inf come back as strings from the mirror)."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value


def format_metric(raw) -> str:
    """4 significant figures: the console's one number format (registry_ui.pages.formatting)."""
    return formatting.sig4(raw)


def key_metric_keys(runs: list[RunSnapshot], limit: int) -> list[str]:
    """The metrics worth a column in a versions table: held by most runs, held-out splits first."""
    counts: dict[str, int] = {}
    for run in runs:
        for key in run.metrics or {}:
            counts[key] = counts.get(key, 0) + 1
    order = {"test": 0, "val": 1, "eval": 2, "": 3, "train": 4}
    ranked = sorted(counts, key=lambda k: (-counts[k], order.get(split_metric(k)[0], 5), k))
    return ranked[:limit]


# --------------------------------------------------------------------------------------------------
# Model page
# --------------------------------------------------------------------------------------------------


@dataclass
class VersionRow:
    version: ModelVersion
    aliases: list[str]
    run: RunSnapshot | None
    key_metrics: list[tuple[str, str]]  # (4 significant figures, full value for the tooltip)
    created_iso: str = ""  # formatted here: the template's date filter is most of a 100-row page's cost
    created_text: str = ""


@dataclass
class ModelPage:
    model: RegisteredModel
    aliases: list[ModelAlias]
    stage_holders: dict[str, list[int]]
    rows: list[VersionRow]
    key_metrics: list[str]


def model_page(user, name: str) -> ModelPage:
    model = model_for_user(user, name)
    # Only the columns the table shows: params and tags of 100 runs would be decoded for nothing.
    versions = list(model.versions.order_by("-version").only("model_id", "version", "stage", "status",
                                                              "created_at", "run_id"))
    aliases = list(model.aliases.order_by("alias"))
    run_ids = {v.run_id for v in versions if v.run_id}
    runs = {r.run_id: r for r in RunSnapshot.objects.filter(run_id__in=run_ids).only("run_id", "run_name",
                                                                                       "metrics")} if run_ids else {}
    keys = key_metric_keys(list(runs.values()), settings.REGISTRY_KEY_METRICS)
    by_version: dict[int, list[str]] = {}
    for a in aliases:
        by_version.setdefault(a.version, []).append(a.alias)
    stage_holders = {
        stage: [v.version for v in versions if v.stage == stage] for stage in (Stage.PRODUCTION, Stage.STAGING)
    }
    rows = []
    for v in versions:
        run = runs.get(v.run_id)
        metrics = (run.metrics if run else {}) or {}
        created = timezone.localtime(v.created_at) if v.created_at else None
        rows.append(VersionRow(version=v, aliases=by_version.get(v.version, []), run=run,
                               key_metrics=[(format_metric(metrics.get(k)), formatting.full_number(metrics.get(k)))
                                            for k in keys],
                               created_iso=created.isoformat() if created else "",
                               created_text=created.strftime(formatting.DATE_FORMAT) if created else ""))
    return ModelPage(model=model, aliases=aliases, stage_holders=stage_holders, rows=rows, key_metrics=keys)


# --------------------------------------------------------------------------------------------------
# Version page
# --------------------------------------------------------------------------------------------------


@dataclass
class MetricSplitRow:
    name: str
    values: dict[str, str]  # split -> formatted value ("" when missing)


@dataclass
class VersionPage:
    version: ModelVersion
    model: RegisteredModel
    aliases: list[str]
    run: RunSnapshot | None
    datasets: list[DatasetInput]
    splits: list[str]
    metric_rows: list[MetricSplitRow]
    params: list[tuple[str, str]]
    run_tags: list[tuple[str, str]]
    version_tags: list[tuple[str, str]] = field(default_factory=list)


def version_for_user(user, name: str, version: int) -> ModelVersion:
    mv = (
        ModelVersion.objects.select_related("model")
        .filter(model__in=visible_scope(user), model__name=name, version=version).first()
    )
    if mv is None:
        raise Http404("No such model version.")
    return mv


def metric_split_table(metrics: dict) -> tuple[list[str], list[MetricSplitRow]]:
    table: dict[str, dict[str, str]] = {}
    used: set[str] = set()
    for key, raw in (metrics or {}).items():
        split, base = split_metric(key)
        split = split or "other"
        used.add(split)
        table.setdefault(base, {})[split] = format_metric(raw)
    splits = [s for s in [*SPLITS, "other"] if s in used]
    rows = [MetricSplitRow(name=base, values={s: vals.get(s, "") for s in splits})
            for base, vals in sorted(table.items())]
    return splits, rows


def version_page(user, name: str, version: int) -> VersionPage:
    mv = version_for_user(user, name, version)
    run = RunSnapshot.objects.filter(run_id=mv.run_id).first() if mv.run_id else None
    datasets = list(run.datasets.all()) if run else []
    aliases = list(ModelAlias.objects.filter(model=mv.model, version=mv.version).values_list("alias", flat=True))
    splits, metric_rows = metric_split_table(run.metrics if run else {})
    return VersionPage(
        version=mv, model=mv.model, aliases=aliases, run=run, datasets=datasets, splits=splits,
        metric_rows=metric_rows,
        params=sorted(((k, str(v)) for k, v in ((run.params if run else {}) or {}).items())),
        run_tags=sorted(((k, str(v)) for k, v in ((run.tags if run else {}) or {}).items())),
        version_tags=sorted(((k, str(v)) for k, v in (mv.tags or {}).items())),
    )


# --------------------------------------------------------------------------------------------------
# Comparison selection
# --------------------------------------------------------------------------------------------------


class BadSelection(ValueError):
    """The versions to compare could not be understood (400)."""


@dataclass(frozen=True)
class VersionRef:
    model: str
    version: int

    @property
    def label(self) -> str:
        return f"{self.model} v{self.version}"


_REF = re.compile(r"^(?P<model>.+):(?P<version>\d+)$")


def parse_version_refs(*, model: str = "", versions: list[str] | tuple[str, ...] = ()) -> list[VersionRef]:
    """Versions to compare, from `model=m&versions=1,2,3`, `versions=model-a:1,model-b:2`, or repeated
    `v=model-a:1` values. A value is split on commas first; a name that itself contains a comma is
    read whole only when the split does not parse (repeated `v=` values cope with any name)."""
    refs: list[VersionRef] = []

    def read(part: str) -> VersionRef | None:
        match = _REF.match(part)
        if match:
            return VersionRef(match["model"], int(match["version"]))
        if part.isdigit() and model:
            return VersionRef(model, int(part))
        return None

    for raw in versions:
        raw = raw.strip()
        if not raw:
            continue
        parts = [p.strip() for p in raw.split(",")]
        parsed = [read(p) for p in parts]
        if all(parsed):
            refs.extend(parsed)
            continue
        whole = read(raw)
        if whole is None:
            bad = next(p for p, r in zip(parts, parsed, strict=True) if r is None)
            raise BadSelection(f"Cannot read version {bad!r}: use a number with model=..., or model:version.")
        refs.append(whole)
    seen: set[VersionRef] = set()
    unique = [r for r in refs if not (r in seen or seen.add(r))]
    if len(unique) > settings.REGISTRY_COMPARE_MAX_VERSIONS:
        raise BadSelection(f"Compare at most {settings.REGISTRY_COMPARE_MAX_VERSIONS} versions at once.")
    return unique


@dataclass
class CompareItem:
    ref: VersionRef
    version: ModelVersion
    run: RunSnapshot | None

    @property
    def label(self) -> str:
        return self.ref.label

    @property
    def metrics(self) -> dict:
        return (self.run.metrics if self.run else {}) or {}

    @property
    def params(self) -> dict:
        return (self.run.params if self.run else {}) or {}


def compare_items(user, refs: list[VersionRef]) -> list[CompareItem]:
    """The versions behind `refs`, in the order asked; Http404 names those missing or out of scope."""
    if not refs:
        return []
    cond = Q()
    for ref in refs:
        cond |= Q(model__name=ref.model, version=ref.version)
    found = {
        (mv.model.name, mv.version): mv
        for mv in ModelVersion.objects.select_related("model").filter(cond, model__in=visible_scope(user))
    }
    missing = [r.label for r in refs if (r.model, r.version) not in found]
    if missing:
        raise Http404("No such model version: " + ", ".join(missing))
    run_ids = {mv.run_id for mv in found.values() if mv.run_id}
    runs = {r.run_id: r for r in RunSnapshot.objects.filter(run_id__in=run_ids)} if run_ids else {}
    items = []
    for ref in refs:
        mv = found[(ref.model, ref.version)]
        items.append(CompareItem(ref=ref, version=mv, run=runs.get(mv.run_id)))
    return items


def compare_candidates(user, model: RegisteredModel) -> list[ModelVersion]:
    return list(model.versions.order_by("-version"))


def model_names_for_picker(user, limit: int = 500) -> list[str]:
    return list(visible_scope(user).order_by("name").values_list("name", flat=True)[:limit])
