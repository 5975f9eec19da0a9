"""Read-side queries of the registry API: always start from what the user may see."""

from django.db.models import Count, Max, Prefetch
from django.shortcuts import get_object_or_404

from registry_ui import extensions
from registry_ui.mirror.models import DatasetInput, ModelAlias, ModelVersion, RegisteredModel, RunSnapshot

DETAIL_VERSIONS = 50  # the model detail lists the newest versions; versions/ pages through all


def visible_models(user):
    return extensions.visible_models(user, RegisteredModel.objects.all())


def model_search(*, user):
    """The models the user may see, with their version counts; filters (registry_ui.filters.ModelFilterSet)
    narrow this queryset."""
    return (visible_models(user).annotate(version_count=Count("versions"), latest_version=Max("versions__version"))
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
