"""Audit-trail panels on the registry pages: the stage/alias timeline of a model (deployments,
drift) from the audit events. Owned by the audit issue."""


def timeline_panels(kind: str, request, obj) -> list[tuple[str, dict]]:
    return []
