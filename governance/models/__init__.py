"""Governance models, one module per concern (audit, workflow, ...)."""

from governance.models.audit import AuditEvent
from governance.models.workflow import Approval, Deployment, ModelPolicy, PromotionRequest  # noqa: F401

__all__ = ["AuditEvent"]
