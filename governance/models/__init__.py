"""Governance models, one module per concern (audit, workflow, ...)."""

from governance.models.audit import AuditEvent, AuditVerification

__all__ = ["AuditEvent", "AuditVerification"]
