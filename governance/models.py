"""Django finds an app's models in `<app>.models`; governance keeps each concern's models in its own
package (audit/models.py, workflow/models.py)."""

from governance.audit.models import AuditEvent, AuditVerification
from governance.validation.models import ValidationRun
from governance.workflow.models import Approval, Deployment, ModelPolicy, PromotionRequest

__all__ = ["AuditEvent", "AuditVerification", "Approval", "Deployment", "ModelPolicy", "PromotionRequest",
           "ValidationRun"]
