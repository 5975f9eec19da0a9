"""Governance panels on the registry pages (see registry_ui.extensions).

Owned by the workflow issue: who may request/approve/deploy, requests of a model or version, the
actions the current user may take, open-request counts for the catalogue. The audit issue adds a
timeline provider (governance.panels_audit).
"""


def workflow_panels(kind: str, request, obj) -> list[tuple[str, dict]]:
    return []


def catalogue_annotations(user, models) -> dict[int, dict]:
    return {}
