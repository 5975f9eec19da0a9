"""The Watch button on the model page (a REGISTRY_PANEL_PROVIDERS provider, see registry_ui.extensions)."""

from governance.access import can, request_checker
from governance.notify.selectors import watches


def watch_panels(kind: str, request, obj) -> list[tuple[str, dict]]:
    if kind != "model" or not can(request.user, "view", obj, checker=request_checker(request)):
        return []
    return [("notify/panels/watch.html", {"model": obj, "watching": watches(request.user, obj)})]
