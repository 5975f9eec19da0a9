"""Benchmark-only seeding of model risk in the scratch database, after the sync filled the mirror: a
tier on three models in four (cycling Tier 1, 2, 3), and open and closed findings, so the portfolio
page is measured with the work it does in use (tiers feed the re-review queue: Tier 1 and 2 holders
never approved are all due). Bulk rows, like seed_audit: the product sets tiers and raises findings
only through governance.risk.services, one audited change at a time."""

from __future__ import annotations

import time
from datetime import date, timedelta

from django.db import transaction

OPEN_FINDINGS = 2000
TIERS = ("tier1", "tier2", "tier3", "")


def seed_model_risk(open_findings: int = OPEN_FINDINGS) -> float:
    from django.utils import timezone

    from governance.risk.models import Finding, ModelRiskTier, TierChange
    from registry_ui.mirror.models import RegisteredModel

    started = time.perf_counter()
    ids = list(RegisteredModel.objects.order_by("pk").values_list("pk", flat=True))
    with transaction.atomic():
        changes = TierChange.objects.bulk_create([
            TierChange(model_id=pk, to_tier=TIERS[i % len(TIERS)], reason="bench", requester_username="bench-scientist",
                       state="approved", decided_by="bench-engineer", decided_at=timezone.now())
            for i, pk in enumerate(ids) if TIERS[i % len(TIERS)]])
        ModelRiskTier.objects.bulk_create([ModelRiskTier(model_id=c.model_id, tier=c.to_tier, change=c)
                                           for c in changes], batch_size=2000)
        severities, today = ("blocking", "major", "minor"), date(2026, 11, 1)
        Finding.objects.bulk_create([
            Finding(model_id=ids[(n * 7) % len(ids)], version=None, severity=severities[n % 3], description="bench",
                    owner_username="bench-scientist", raised_by="bench-engineer",
                    due_date=today + timedelta(days=(n % 60) - 30),
                    state="closed" if n >= open_findings else "open")
            for n in range(open_findings + open_findings // 2)] if ids else [], batch_size=2000)
    return time.perf_counter() - started
