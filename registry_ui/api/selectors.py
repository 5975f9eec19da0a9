"""Read-side queries of the registry API: always start from what the user may see."""

from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404

from registry_ui import extensions
from registry_ui.mirror.models import DatasetInput, ModelAlias, ModelVersion, RegisteredModel, RunSnapshot, Stage

DETAIL_VERSIONS = 50  # the model detail lists the newest versions; versions/ pages through all


class BadFilter(ValueError):
    pass


def visible_models(user):
    return extensions.visible_models(user, RegisteredModel.objects.all())


def model_search(*, user, q: str = "", tags: list[str] = (), stage: str = "", alias: str = ""):
    qs = visible_models(user)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q))
    for i, tag in enumerate(tags):
        key, sep, value = tag.partition(":")
        if not sep or not key:
            raise BadFilter("tag filter must look like key:value")
        # KeyTextTransform, not tags__<key>: a key may contain "__" or dots.
        text = Cast(KeyTextTransform(key, "tags"), TextField())
        qs = qs.alias(**{f"_tag{i}": text}).filter(**{f"_tag{i}": value})
    if stage:
        if stage not in Stage.values:
            raise BadFilter(f"stage must be one of {', '.join(Stage.values)}")
        qs = qs.filter(Exists(ModelVersion.objects.filter(model=OuterRef("pk"), stage=stage)))
    if alias:
        qs = qs.filter(Exists(ModelAlias.objects.filter(model=OuterRef("pk"), alias=alias)))
    return (qs.annotate(version_count=Count("versions"), latest_version=Max("versions__version"))
            .prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.order_by("alias")))
            .order_by("name"))


def model_get(*, user, name: str) -> RegisteredModel:
    qs = visible_models(user).prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.order_by("alias")))
    model = get_object_or_404(qs, name=name)
    model.newest_versions = list(ModelVersion.objects.filter(model=model).order_by("-version")[:DETAIL_VERSIONS])
    return model


def version_list(*, user, name: str):
    model = get_object_or_404(visible_models(user), name=name)
    return model, ModelVersion.objects.filter(model=model).select_related("model").order_by("-version")


def version_get(*, user, name: str, version: int):
    model = get_object_or_404(visible_models(user).prefetch_related("aliases"), name=name)
    obj = get_object_or_404(ModelVersion.objects.select_related("model"), model=model, version=version)
    run = None
    if obj.run_id:
        run = (RunSnapshot.objects.filter(run_id=obj.run_id)
               .prefetch_related(Prefetch("datasets", queryset=DatasetInput.objects.order_by("context", "name")))
               .first())
    aliases = sorted(a.alias for a in model.aliases.all() if a.version == obj.version)
    return obj, run, aliases
