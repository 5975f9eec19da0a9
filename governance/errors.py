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
