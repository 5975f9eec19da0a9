"""Governance models, one module per concern (audit, workflow, ...)."""

from governance.models.audit import AuditEvent

__all__ = ["AuditEvent"]
