"""Extension points through which governance adds to the registry pages without registry_ui
importing governance: the providers are named in settings (REGISTRY_VISIBILITY,
REGISTRY_PANEL_PROVIDERS, REGISTRY_CATALOGUE_ANNOTATOR) and loaded by dotted path.

- visible_models(user, queryset) -> queryset: the registered models this user may see.
- panels(kind, request, obj) -> list[str]: rendered HTML fragments for a page. `kind` is
  "model" (obj: RegisteredModel) or "version" (obj: ModelVersion). Each provider returns a list of
  (template_name, context) pairs; they are rendered here with the request.
- catalogue_annotations(user, models) -> {model_id: {"open_requests": int, ...}} for one page of models.
"""

from functools import cache

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString


@cache
def _load(path: str):
    return import_string(path)


def visible_models(user, queryset):
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    path = getattr(settings, "REGISTRY_VISIBILITY", "")
    return _load(path)(user, queryset) if path else queryset


def panels(kind: str, request, obj) -> list[SafeString]:
    fragments = []
    for path in getattr(settings, "REGISTRY_PANEL_PROVIDERS", []):
        for template_name, context in _load(path)(kind, request, obj):
            fragments.append(render_to_string(template_name, context, request=request))
    return fragments


def catalogue_annotations(user, models) -> dict[int, dict]:
    path = getattr(settings, "REGISTRY_CATALOGUE_ANNOTATOR", "")
    return _load(path)(user, models) if path else {}
