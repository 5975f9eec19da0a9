from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """Roles, the promotion workflow and the audit trail."""

    name = "governance"
    verbose_name = "Governance"

    def ready(self):
        from governance.audit import signals as audit_signals

        audit_signals.connect()
