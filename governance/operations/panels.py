"""What the Operations area adds to the registry's model page: the mirror's age and "Sync this model"
(ops and administrators only)."""

from governance.access import is_operator


def operations_panels(kind: str, request, obj) -> list[tuple[str, dict]]:
    if kind != "model" or not is_operator(request.user):
        return []
    return [("operations/panels/model.html", {"model": obj})]
