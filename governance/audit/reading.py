"""The trail read as a document: each event as a sentence, and a report's summary (how many requests,
approvals, deploys, drift and overrides, and who did them). Presentation only: reads events, never
writes, decides nothing."""

from __future__ import annotations

from collections import Counter


def _d(value) -> dict:
    return value if isinstance(value, dict) else {}


def _change(before: dict, after: dict) -> str:
    parts = []
    for key in ("stage", "alias", "aliases", "target", "version", "value", "description"):
        if key in before or key in after:
            parts.append(f"{key} {before.get(key, '–')} → {after.get(key, '–')}")
    return "; ".join(parts)


def event_sentence(e) -> str:
    """"alice requested v3 → @champion", "system:sync saw drift: stage Staging → Archived", ..."""
    who, action = e.actor_username or "someone", e.action
    before, after = _d(e.before), _d(e.after)
    v = f" v{e.version}" if e.version is not None else ""
    req = f" (request #{e.request_id})" if e.request_id is not None else ""
    target = after.get("target_alias") and f"@{after['target_alias']}" or after.get("target_stage") or \
        after.get("target") or ""
    if action == "request.created":
        return f"{who} requested{v}" + (f" → {target}" if target else "") + req
    if action == "request.approved":
        n, quorum = after.get("approvals"), after.get("quorum")
        text = f"{who} approved{v}{req}" + (f", {n} of {quorum}" if n and quorum and quorum > 1 else "")
        return text + (", overriding failing gates" if after.get("override") else "")
    if action == "request.rejected":
        return f"{who} rejected{v}{req}"
    if action == "request.cancelled":
        return f"{who} cancelled{v}{req}"
    if action == "request.reapproval_required":
        return f"{who}'s deploy found changed evidence{req}: it needs approving again"
    if action == "deploy.started":
        return f"{who} started deploying{v}" + (f" to {target}" if target else "") + req
    if action == "deploy.succeeded":
        change = _change(before, after)
        return f"{who} deployed{v}{req}" + (f": {change}" if change else "")
    if action == "deploy.failed":
        return f"the deploy of{v} by {who} failed{req}" + (f": {after['error']}" if after.get("error") else "")
    if action == "registry.drift":
        change = _change(before, after)
        return f"drift seen by {who} on{v or ' the model'}: " + (change or "MLflow changed outside the console")
    if action.startswith("registry."):
        change = _change(before, after)
        return f"{who}: {action.removeprefix('registry.').replace('_', ' ')}{v}" + (f" ({change})" if change else "")
    if action == "audit.verified":
        return f"{who} verified the audit chain: " + ("intact" if after.get("ok") else
                                                       f"BROKEN at seq {after.get('broken_seq')}")
    if action == "report.exported":
        return f"{who} exported {after.get('what', 'events')} as {after.get('format', '?')}"
    return f"{who}: {action.replace('.', ' ').replace('_', ' ')}{v}{req}"


def report_summary(events) -> dict:
    """Counts and people of a report's period."""
    counts = Counter(e.action for e in events)
    people: dict[str, set[str]] = {"requested": set(), "approved": set(), "rejected": set(), "deployed": set()}
    overrides = 0
    for e in events:
        role = {"request.created": "requested", "request.approved": "approved", "request.rejected": "rejected",
                "deploy.succeeded": "deployed"}.get(e.action)
        if role:
            people[role].add(e.actor_username)
        if e.action == "request.approved" and _d(e.after).get("override"):
            overrides += 1
    return {
        "requests": counts["request.created"], "approvals": counts["request.approved"],
        "rejections": counts["request.rejected"], "deploys": counts["deploy.succeeded"],
        "failed_deploys": counts["deploy.failed"], "drift": counts["registry.drift"], "overrides": overrides,
        "events": len(events), "people": [(role, sorted(names)) for role, names in people.items() if names],
    }
