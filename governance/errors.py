"""Domain errors of the workflow and their one mapping to HTTP (API: JSON {"detail": ...}; pages: messages).

Services raise these (or Django's PermissionDenied / Http404); views never pick status codes.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404


class DomainError(Exception):
    status = 400

    @property
    def detail(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidInput(DomainError):
    status = 400


class PolicyViolation(DomainError):
    """A policy gate or rule (separation of duties, override without comment) forbids the step."""

    status = 400


class NotFound(DomainError):
    status = 404


class TransitionNotAllowed(DomainError):
    """The request is not in a state that allows this step (or another user got there first)."""

    status = 409


class Conflict(DomainError):
    """Another open request holds the target, or MLflow no longer matches what was approved."""

    status = 409


class DeployFailed(DomainError):
    """MLflow could not be written or confirmed; the request is now 'failed' with the error kept."""

    status = 502


class EvidenceUnavailable(DomainError):
    """MLflow could not be read at the moment of a decision, so there is no evidence to judge: the
    step is refused and nothing changes (the mirror is never the evidence for a decision)."""

    status = 503


def http_status(exc: BaseException) -> int | None:
    """The HTTP status for a known error, None for anything else (a bug: let it be a 500)."""
    if isinstance(exc, DomainError):
        return exc.status
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, Http404):
        return 404
    return None


def detail(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    text = str(exc)
    if isinstance(exc, Http404):
        return text or "Not found."
    if isinstance(exc, PermissionDenied):
        return text or "You do not have permission to do this."
    return text


def known(exc: BaseException) -> bool:
    return http_status(exc) is not None


KNOWN_ERRORS = (DomainError, PermissionDenied, Http404)


def raise_page_error(exc: BaseException) -> None:
    """For pages: a refusal of permission renders the 403 page and a missing object the 404 page; any
    other domain error returns, for the view to show its message on the page."""
    if isinstance(exc, PermissionDenied):
        raise exc
    if isinstance(exc, NotFound | Http404):
        raise Http404(detail(exc))


# --- The API's one error shape ----------------------------------------------------------------------
# Every API error is {"detail": "<one line>", "code": "<machine-readable>", "fields": {field: [messages]}}
# with the status above (DRF's own errors keep theirs: 401, 405, 406, 415, 429...). An unexpected
# exception is logged and answered 500 with the same shape and nothing of the exception in it.

_DOMAIN_CODES = {
    "InvalidInput": "invalid_input",
    "PolicyViolation": "policy_violation",
    "NotFound": "not_found",
    "TransitionNotAllowed": "transition_not_allowed",
    "Conflict": "conflict",
    "DeployFailed": "deploy_failed",
    "EvidenceUnavailable": "evidence_unavailable",
}


def code(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return next((c for cls in type(exc).__mro__ if (c := _DOMAIN_CODES.get(cls.__name__))), "domain_error")
    if isinstance(exc, PermissionDenied):
        return "permission_denied"
    if isinstance(exc, Http404):
        return "not_found"
    return "error"


def error_body(detail_text: str, error_code: str, fields: dict | None = None) -> dict:
    return {"detail": detail_text, "code": error_code, "fields": fields or {}}


def api_exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: domain errors through http_status/detail above, DRF's errors
    reshaped, anything else a 500 without a traceback (logged with it)."""
    import logging

    from rest_framework import exceptions as drf
    from rest_framework.response import Response

    from registry_ui.validation import flat_errors, invalid_input_body

    if isinstance(exc, KNOWN_ERRORS):
        return Response(error_body(detail(exc), code(exc)), status=http_status(exc))
    if isinstance(exc, drf.ValidationError):
        raw = exc.detail
        if isinstance(raw, dict) and set(raw) <= {"detail", "fields"} and "fields" in raw:
            # Already shaped by registry_ui.validation.invalid_input_body.
            body = {"detail": str(raw["detail"]), "fields": flat_errors(raw["fields"])}
        else:
            body = invalid_input_body(flat_errors(raw))
        return Response(error_body(body["detail"], "invalid", body["fields"]), status=400)
    if isinstance(exc, drf.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))
        raw = exc.detail
        text = str(raw if not isinstance(raw, dict | list) else flat_errors(raw))
        codes = exc.get_codes()
        return Response(error_body(text, codes if isinstance(codes, str) else exc.default_code),
                        status=exc.status_code, headers=headers)
    logging.getLogger("governance.api").error("Unhandled API error", exc_info=exc)
    return Response(error_body("Internal server error.", "server_error"), status=500)
