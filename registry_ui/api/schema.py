"""What the OpenAPI schema says about every endpoint: the one error body and the responses that use it.
Used by the registry API and by governance's API (governance may import registry_ui, not the reverse)."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

_DESCRIPTIONS = {
    400: "Invalid input: `fields` names each bad parameter or field.",
    401: "No or bad credentials (`WWW-Authenticate: Token`).",
    403: "Signed in but not allowed (role, separation of duties, or the token's scope).",
    404: "No such object, or not one the caller may see.",
    409: "The object's state does not allow this (or another user got there first).",
    429: "Too many requests for this token (`Retry-After` says when to come back).",
    502: "MLflow could not be written or confirmed during a deploy.",
    503: "MLflow could not be read at the moment of the decision; nothing changed.",
}
_EXAMPLES = {
    400: {"detail": "stage: stage must be one of None, Staging, Production, Archived", "code": "invalid",
          "fields": {"stage": ["stage must be one of None, Staging, Production, Archived"]}},
    401: {"detail": "Authentication credentials were not provided.", "code": "not_authenticated", "fields": {}},
    403: {"detail": "You do not have permission to perform this action.", "code": "permission_denied", "fields": {}},
    404: {"detail": "Not found.", "code": "not_found", "fields": {}},
    409: {"detail": "Request 12 is approved, not pending.", "code": "transition_not_allowed", "fields": {}},
    429: {"detail": "Request was throttled. Expected available in 12 seconds.", "code": "throttled", "fields": {}},
    502: {"detail": "MLflow write failed: connection refused", "code": "deploy_failed", "fields": {}},
    503: {"detail": "MLflow unavailable: connection refused", "code": "evidence_unavailable", "fields": {}},
}


class ErrorSerializer(serializers.Serializer):
    """Every error of the API, whatever its status."""

    detail = serializers.CharField(help_text="One line a person can read.")
    code = serializers.CharField(help_text="Machine-readable: invalid, not_authenticated, permission_denied, "
                                           "not_found, transition_not_allowed, conflict, throttled, ...")
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="Messages per input field (empty unless the input was invalid).")


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses of an endpoint; 401, 403 and 429 apply to every endpoint and are always added."""
    wanted = sorted({401, 403, 429, *statuses})
    return {
        status: OpenApiResponse(
            ErrorSerializer, description=_DESCRIPTIONS[status],
            examples=[OpenApiExample(f"error {status}", value=_EXAMPLES[status], response_only=True,
                                     status_codes=[str(status)])],
        )
        for status in wanted
    }


def ok(serializer, description: str, example: dict | None = None, status: int = 200) -> dict:
    examples = [OpenApiExample("example", value=example, response_only=True, status_codes=[str(status)])] \
        if example is not None else []
    return {status: OpenApiResponse(serializer, description=description, examples=examples)}
