"""Django finds an app's models in `<app>.models`; governance keeps each concern's models in its own
package (audit/models.py, workflow/models.py)."""

from governance.audit.models import AuditEvent, AuditVerification
from governance.cards.models import CardRevision, CardTemplate, ModelCard
from governance.notify.models import (
    Delivery,
    MailPreference,
    ModelWatch,
    Notification,
    OutboundEvent,
    Subscription,
)
from governance.risk.models import Finding, ModelRiskTier, TierChange
from governance.tokens.models import ApiToken
from governance.validation.models import ValidationRun
from governance.workflow.models import Approval, Deployment, ModelPolicy, PromotionRequest

__all__ = ["ApiToken", "AuditEvent", "AuditVerification", "Approval", "Deployment", "ModelPolicy", "PromotionRequest",
           "OutboundEvent", "Subscription", "Delivery", "Notification", "MailPreference", "ModelWatch",
           "ValidationRun", "Finding", "ModelRiskTier", "TierChange", "CardTemplate", "ModelCard", "CardRevision"]
