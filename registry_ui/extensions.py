"""Extension points through which governance adds to the registry without registry_ui importing
governance: the providers are named in settings by dotted path and loaded once, at start-up.

- REGISTRY_VISIBILITY: visible_models(user, queryset) -> queryset, the registered models this user may
  see. Required: without it nobody would know what a user may see, so start-up stops.
- REGISTRY_PANEL_PROVIDERS: panels(kind, request, obj) -> [(template_name, context), ...] for a page.
  `kind` is "model" (obj: RegisteredModel), "model_banner" (the same, shown above the page's content:
  alerts such as drift) or "version" (obj: ModelVersion); a provider returns [] for a kind it ignores.
- REGISTRY_CATALOGUE_ANNOTATOR: catalogue_annotations(user, models) -> {model_id: {...}} for a page.
- REGISTRY_SYNC_REPORT_HANDLERS: called inside each sync transaction with what it wrote (drift).
- REGISTRY_RUNS_TO_REFRESH: runs_to_refresh(model_names) -> run ids behind versions of these models that
  are in an open promotion request: the sync re-reads them every time (they are a decision's evidence).
- REGISTRY_WATCH_HOOKS: called after each pass of `sync_registry --watch`.

Every path is imported by load_all() from the app's ready(): a path that does not import stops
start-up with ImproperlyConfigured naming the setting, instead of a page that silently shows every
model or a sync that silently records no drift.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.template.loader import render_to_string
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString

REQUIRED = ("REGISTRY_VISIBILITY",)
SINGLE = ("REGISTRY_VISIBILITY", "REGISTRY_CATALOGUE_ANNOTATOR", "REGISTRY_RUNS_TO_REFRESH")
LISTS = ("REGISTRY_PANEL_PROVIDERS", "REGISTRY_SYNC_REPORT_HANDLERS", "REGISTRY_WATCH_HOOKS")

_loaded: dict[str, object] = {}


def _import(setting: str, path) -> object:
    if not isinstance(path, str) or not path:
        raise ImproperlyConfigured(f"{setting} must be a dotted path to a callable, not {path!r}.")
    try:
        found = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{setting}: {path!r} does not import ({exc}).") from exc
    if not callable(found):
        raise ImproperlyConfigured(f"{setting}: {path!r} is not callable.")
    return found


def load_all() -> dict[str, object]:
    """Import every configured provider; raise ImproperlyConfigured on the first that fails."""
    loaded: dict[str, object] = {}
    for setting in SINGLE:
        path = getattr(settings, setting, "")
        if not path:
            if setting in REQUIRED:
                raise ImproperlyConfigured(f"{setting} is not set: it names the function that decides which "
                                           "registered models a user may see.")
            loaded[setting] = None
            continue
        loaded[setting] = _import(setting, path)
    for setting in LISTS:
        paths = getattr(settings, setting, [])
        if isinstance(paths, str):
            raise ImproperlyConfigured(f"{setting} must be a list of dotted paths, not a string.")
        loaded[setting] = [_import(setting, path) for path in paths]
    _loaded.clear()
    _loaded.update(loaded)
    return loaded


def provider(setting: str):
    """The loaded provider(s) of `setting` (loaded on first use when ready() has not run, as in a
    settings override of a test)."""
    if setting not in _loaded:
        load_all()
    return _loaded[setting]


def visible_models(user, queryset):
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    return provider("REGISTRY_VISIBILITY")(user, queryset)


def panels(kind: str, request, obj) -> list[SafeString]:
    fragments = []
    for panel_provider in provider("REGISTRY_PANEL_PROVIDERS"):
        for template_name, context in panel_provider(kind, request, obj):
            fragments.append(render_to_string(template_name, context, request=request))
    return fragments


def catalogue_annotations(user, models) -> dict[int, dict]:
    annotator = provider("REGISTRY_CATALOGUE_ANNOTATOR")
    return annotator(user, models) if annotator else {}


def sync_report_handlers() -> list:
    return provider("REGISTRY_SYNC_REPORT_HANDLERS")


def runs_to_refresh(model_names: list[str]) -> set[str]:
    hook = provider("REGISTRY_RUNS_TO_REFRESH")
    return set(hook(model_names)) if hook and model_names else set()


def watch_hooks() -> list:
    return provider("REGISTRY_WATCH_HOOKS")
