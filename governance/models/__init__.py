"""Governance models, one module per concern (audit, workflow, ...)."""

from governance.models.audit import AuditEvent, AuditVerification
from governance.models.workflow import Approval, Deployment, ModelPolicy, PromotionRequest

__all__ = ["AuditEvent", "AuditVerification", "Approval", "Deployment", "ModelPolicy", "PromotionRequest"]
