"""Reads of model cards: the template of a tier, a version's card and what it lacks, the approval gate's
answer (also for whole lists in a fixed number of queries), and the text written to MLflow."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.urls import reverse

from governance.cards import defaults, text
from governance.cards.models import CardRevision, CardTemplate, ModelCard, RevisionState
from governance.risk import selectors as risk_selectors
from governance.risk.models import ModelRiskTier

LINK_TAG = "governance.model_card"


def tier_rules(tier: str) -> dict:
    """{"review_edits": bool, "gate_approval": bool} of a tier (settings.MODEL_CARD_TIER_RULES)."""
    rules = (settings.MODEL_CARD_TIER_RULES or {}).get(tier) or {}
    return {"review_edits": bool(rules.get("review_edits")), "gate_approval": bool(rules.get("gate_approval"))}


def template_for(tier: str) -> list[dict]:
    """The sections of a tier's card: the admin's template, else the built-in default."""
    row = CardTemplate.objects.filter(tier=tier or "").first()
    return list(row.sections) if row is not None else defaults.default_sections(tier or "")


def card_for(model, version: int) -> ModelCard | None:
    if model is None or getattr(model, "pk", None) is None:
        return None
    return ModelCard.objects.select_related("current").filter(model=model, version=version).first()


def pending_revision(card: ModelCard | None) -> CardRevision | None:
    return card.revisions.filter(state=RevisionState.PENDING).first() if card is not None else None


def merged_sections(template: list[dict], revision_sections: list[dict] | None) -> list[dict]:
    """The template's sections with the revision's text, then any section the revision has that the
    template no longer names (kept, never required)."""
    bodies = {s["key"]: s for s in (revision_sections or [])}
    out = [{**t, "body": (bodies.get(t["key"]) or {}).get("body", "")} for t in template]
    known = {t["key"] for t in template}
    out += [{"key": s["key"], "title": s.get("title") or s["key"], "required": False, "guidance": "",
             "body": s.get("body", "")} for s in revision_sections or [] if s["key"] not in known]
    return out


def missing_required(template: list[dict], revision: CardRevision | None) -> list[str]:
    """Titles of the template's required sections the revision leaves empty (all of them: no revision)."""
    bodies = {s["key"]: (s.get("body") or "").strip() for s in (revision.sections if revision else [])}
    return [t["title"] for t in template if t.get("required") and not bodies.get(t["key"])]


def approval_gaps(model, version: int) -> list[str] | None:
    """None when the model's tier does not gate approval on its card; else the required sections the
    approved card of `version` lacks ([] = complete)."""
    tier = risk_selectors.tier_of(model)
    if not tier_rules(tier)["gate_approval"]:
        return None
    card = card_for(model, version)
    return missing_required(template_for(tier), card.current if card else None)


def annotate_card_gaps(requests) -> None:
    """Set `_card_gaps` (what approval_gaps answers) on each request, in three queries for the list."""
    model_ids = {r.model_id for r in requests if r.model_id}
    tiers = dict(ModelRiskTier.objects.filter(model_id__in=model_ids).values_list("model_id", "tier")) \
        if model_ids else {}
    gated = {mid: t for mid, t in tiers.items() if tier_rules(t)["gate_approval"]}
    cards = {(c.model_id, c.version): c for c in ModelCard.objects.select_related("current").filter(
        model_id__in=list(gated))} if gated else {}
    templates = {}
    for tier in set(gated.values()):
        templates[tier] = template_for(tier)
    for req in requests:
        tier = gated.get(req.model_id)
        if tier is None:
            req._card_gaps = None
            continue
        card = cards.get((req.model_id, req.version))
        req._card_gaps = missing_required(templates[tier], card.current if card else None)


def card_url(model_name: str, version: int) -> str:
    return reverse("cards:card_detail", kwargs={"name": model_name, "version": version})


def mlflow_description(revision: CardRevision, *, model_name: str, version: int) -> str:
    """What MLflow's users see as the version's description: the card, and where it was approved."""
    second = revision.decided_by and revision.decided_by != revision.author_username
    how = f"approved by {revision.decided_by}" if second else f"written by {revision.author_username}"
    when = revision.decided_at or revision.created_at
    footer = (f"---\n_Model card revision {revision.number}, {how} on {when:%Y-%m-%d}, governed by the Model "
              f"Governance Console: {settings.CONSOLE_BASE_URL}{card_url(model_name, version)}_")
    return text.document(revision.sections, heading=f"Model card: {model_name} v{version}") + "\n" + footer + "\n"


def link_tag(revision: CardRevision, *, model_name: str, version: int) -> str:
    return f"{settings.CONSOLE_BASE_URL}{card_url(model_name, version)}?revision={revision.number}"


def digest(description: str) -> str:
    return hashlib.sha256((description or "").encode()).hexdigest()


def written_by_card(*, model_name: str, version: int | None, description=None, tag: tuple | None = None):
    """The card revision that wrote this description (or this link tag) on this version (the sync's
    explanation of a change it sees), or None."""
    if version is None:
        return None
    revisions = CardRevision.objects.filter(card__model__name=model_name, card__version=version,
                                            state=RevisionState.APPROVED).exclude(description_digest="")
    if description is not None:
        return revisions.filter(description_digest=digest(description)).order_by("-number").first()
    if tag is not None and tag[0] == LINK_TAG:
        number = (tag[1] or "").rpartition("?revision=")[2]
        return revisions.filter(number=int(number)).first() if number.isdigit() else None
    return None


def revisions_of(card: ModelCard | None, limit: int = 20) -> list[CardRevision]:
    return list(card.revisions.all()[:limit]) if card is not None else []
