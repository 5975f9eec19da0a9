"""Writes of model cards. Each: permission check, a conditional update claiming the row, the change and
its audit event in one transaction; the approved card is then written to MLflow (outside the
transaction, through the mirror's client, sent once and read back when the answer is lost).

Decisions: anyone who may request or approve on the model edits its cards (data scientists draft,
approvers too). Where the tier reviews edits (settings.MODEL_CARD_TIER_RULES, Tier 1 by default) an
edit is a proposal that an approver other than its author approves or rejects; elsewhere it applies at
once, the author being on the record. Raw HTML is refused, never silently stripped. A required section
that has text in the approved card may not be emptied; one that never had text may stay empty (a draft
grows), and the approval gate names it."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from governance import audit
from governance.access import can, require_perm, visible_models
from governance.cards import selectors, text
from governance.cards.models import CardRevision, CardTemplate, ModelCard, PublishState, RevisionState
from governance.errors import Conflict, InvalidInput, NotFound, PolicyViolation, TransitionNotAllowed
from governance.risk import selectors as risk_selectors
from registry_ui.mirror import client as gateway
from registry_ui.mirror.models import ModelVersion, RegisteredModel

PUBLISH_LEASE = timedelta(seconds=120)


def _model_for(actor, model_name: str) -> RegisteredModel:
    model = visible_models(actor, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    return model


def may_edit(actor, model, *, checker=None) -> bool:
    return can(actor, "request", model, checker=checker) or can(actor, "approve", model, checker=checker)


def _changed_titles(old: list[dict], new: list[dict]) -> list[str]:
    before = {s["key"]: (s.get("body") or "") for s in old}
    return [s["title"] for s in new if before.get(s["key"], "") != (s.get("body") or "")]


def card_edit(*, actor, model_name: str, version: int, sections: dict[str, str], base_revision: int | None,
              comment: str = "", source_ip: str | None = None) -> CardRevision:
    """Save a new text of the card of `model_name` v`version` (`sections`: key -> markdown, for every
    section of the tier's template; `base_revision`: the approved revision the author edited, None for a
    new card). Applied at once (model_card.edited) or proposed for a second person's approval
    (model_card.proposed) per the tier's rules; refused with nothing changed otherwise."""
    model = _model_for(actor, model_name)
    if not may_edit(actor, model):
        raise PermissionDenied(f"You may not edit the model cards of {model.name}.")
    if not ModelVersion.objects.filter(model=model, version=version).exists():
        raise NotFound(f"{model.name} has no version {version}.")
    tier = risk_selectors.tier_of(model)
    rules = selectors.tier_rules(tier)
    template = selectors.template_for(tier)
    card = selectors.card_for(model, version)
    current = card.current if card else None
    layout = selectors.merged_sections(template, current.sections if current else None)
    unknown = sorted(set(sections) - {s["key"] for s in layout})
    if unknown:
        raise InvalidInput(f"Not a section of this card: {', '.join(unknown)}.")
    new = [{"key": s["key"], "title": s["title"], "body": text.check_markdown(sections.get(s["key"], ""),
                                                                              title=s["title"])} for s in layout]
    if current is not None:
        emptied = [s["title"] for s in layout if s.get("required") and current.body(s["key"]).strip()
                   and not next(n["body"] for n in new if n["key"] == s["key"])]
        if emptied:
            label = risk_selectors.tier_label(tier) if tier else "this model"
            raise InvalidInput(f"Required section {', '.join(repr(t) for t in emptied)} cannot be emptied: "
                               f"{label} cards require it. Nothing was saved.")
        if _changed_titles(current.sections, new) == [] and len(new) == len(current.sections):
            raise InvalidInput(f"Nothing changed: the text is that of revision {current.number}.")
    elif not any(s["body"] for s in new):
        raise InvalidInput("The card is empty: write at least one section.")
    review = rules["review_edits"]
    changed = _changed_titles(current.sections if current else [], new)
    try:
        with transaction.atomic():
            if card is None:
                card, _ = ModelCard.objects.get_or_create(model=model, version=version)
            if card.revisions.filter(state=RevisionState.PENDING).exists():
                raise TransitionNotAllowed("A proposed edit of this card awaits approval: it is decided first.")
            if ModelCard.objects.filter(pk=card.pk).values_list("current_id", flat=True).first() != base_revision \
                    or (current.pk if current else None) != base_revision:
                raise Conflict("The card changed since you opened it: reload it and edit again.")
            number = (card.revisions.aggregate(n=Max("number"))["n"] or 0) + 1
            now = timezone.now()
            rev = CardRevision.objects.create(
                card=card, number=number, sections=new, base_id=base_revision, tier=tier, author=actor,
                author_username=actor.get_username(), comment=(comment or "").strip(),
                state=RevisionState.PENDING if review else RevisionState.APPROVED,
                decided_by="" if review else actor.get_username(), decided_at=None if review else now,
                publish_state="" if review else PublishState.PENDING)
            if not review:
                if ModelCard.objects.filter(pk=card.pk, current_id=base_revision).update(current=rev) != 1:
                    raise Conflict("The card changed since you opened it: reload it and edit again.")
            audit.record(actor=actor, action="model_card.proposed" if review else "model_card.edited",
                         model=model.name, version=version,
                         before={"revision": current.number if current else None},
                         after={"revision": number, "changed": changed, "tier": tier,
                                "review": "a second approver decides" if review else "applied directly"},
                         comment=(comment or "").strip(), source_ip=source_ip)
    except IntegrityError:
        if CardRevision.objects.filter(card__model=model, card__version=version, state=RevisionState.PENDING).exists():
            raise TransitionNotAllowed("A proposed edit of this card awaits approval: it is decided first.") from None
        raise Conflict("Someone else saved this card at the same moment: reload it and edit again.") from None
    if not review:
        card_publish(revision_id=rev.pk)
        rev.refresh_from_db()
    return rev


def _decidable(actor, revision_id: int) -> CardRevision:
    rev = CardRevision.objects.select_related("card__model").filter(pk=revision_id).first()
    if rev is None or not can(actor, "view", rev.card.model):
        raise NotFound(f"No card revision #{revision_id}.")
    require_perm(actor, "approve", rev.card.model)
    if rev.state != RevisionState.PENDING:
        raise TransitionNotAllowed(f"Revision {rev.number} is already {rev.state}.")
    if rev.author_id == actor.pk or rev.author_username == actor.get_username():
        raise PolicyViolation("Separation of duties: a card edit is approved or rejected by someone other than "
                              "its author.")
    return rev


def card_revision_approve(*, actor, revision_id: int, comment: str = "", source_ip: str | None = None) -> CardRevision:
    """A second person approves a proposed edit: it becomes the card in force and is written to MLflow."""
    rev = _decidable(actor, revision_id)
    card = rev.card
    with transaction.atomic():
        claimed = CardRevision.objects.filter(pk=rev.pk, state=RevisionState.PENDING).update(
            state=RevisionState.APPROVED, decided_by=actor.get_username(), decided_at=timezone.now(),
            decision_comment=(comment or "").strip(), publish_state=PublishState.PENDING)
        if claimed != 1:
            raise TransitionNotAllowed("Someone else decided this edit first.")
        if ModelCard.objects.filter(pk=card.pk, current_id=rev.base_id).update(current=rev) != 1:
            raise Conflict("The card changed since this edit was proposed: reject it and propose again.")
        audit.record(actor=actor, action="model_card.approved", model=card.model.name, version=card.version,
                     before={"revision": rev.base.number if rev.base_id else None},
                     after={"revision": rev.number, "author": rev.author_username,
                            "changed": _changed_titles(rev.base.sections if rev.base_id else [], rev.sections)},
                     comment=(comment or "").strip(), source_ip=source_ip)
    card_publish(revision_id=rev.pk)
    rev.refresh_from_db()
    return rev


def card_revision_reject(*, actor, revision_id: int, comment: str, source_ip: str | None = None) -> CardRevision:
    rev = _decidable(actor, revision_id)
    comment = (comment or "").strip()
    if not comment:
        raise InvalidInput("A comment saying why the edit is rejected is required.")
    with transaction.atomic():
        claimed = CardRevision.objects.filter(pk=rev.pk, state=RevisionState.PENDING).update(
            state=RevisionState.REJECTED, decided_by=actor.get_username(), decided_at=timezone.now(),
            decision_comment=comment)
        if claimed != 1:
            raise TransitionNotAllowed("Someone else decided this edit first.")
        audit.record(actor=actor, action="model_card.rejected", model=rev.card.model.name, version=rev.card.version,
                     after={"revision": rev.number, "author": rev.author_username}, comment=comment,
                     source_ip=source_ip)
    rev.refresh_from_db()
    return rev


def card_publish(*, revision_id: int, actor=None) -> str:
    """Write the approved revision to MLflow as its version's description, with the link tag. Claimed by a
    conditional update (one writer at a time; a writer gone longer than the lease is taken over); the
    client reads the version first and sends only what differs, once. Returns the publish state."""
    now = timezone.now()
    rev = CardRevision.objects.select_related("card__model").get(pk=revision_id)
    card = rev.card
    if ModelCard.objects.filter(pk=card.pk).values_list("current_id", flat=True).first() != rev.pk:
        CardRevision.objects.filter(pk=rev.pk, publish_state__in=[PublishState.PENDING, PublishState.FAILED]).update(
            publish_state=PublishState.SUPERSEDED)
        return PublishState.SUPERSEDED
    name, version = card.model.name, card.version
    description = selectors.mlflow_description(rev, model_name=name, version=version)
    tag = selectors.link_tag(rev, model_name=name, version=version)
    # The digest is recorded before the write, so a sync that sees the new description first knows it is ours.
    claimable = Q(publish_state__in=[PublishState.PENDING, PublishState.FAILED]) | Q(
        publish_state=PublishState.WRITING, publish_started_at__lt=now - PUBLISH_LEASE)
    if not CardRevision.objects.filter(claimable, pk=rev.pk).update(
            publish_state=PublishState.WRITING, publish_started_at=now, publish_attempts=F("publish_attempts") + 1,
            description_digest=selectors.digest(description)):
        return CardRevision.objects.filter(pk=rev.pk).values_list("publish_state", flat=True).first()
    who = {"actor": actor} if actor is not None else {"actor_name": "system:cards"}
    try:
        sent = gateway.write_version_description(name, version, description, tags={selectors.LINK_TAG: tag})
    except gateway.MlflowUnavailable as exc:
        with transaction.atomic():
            CardRevision.objects.filter(pk=rev.pk, publish_state=PublishState.WRITING).update(
                publish_state=PublishState.FAILED, publish_error=str(exc)[:2000])
            audit.record(**who, action="model_card.publish_failed", model=name, version=version,
                         after={"revision": rev.number, "error": str(exc)[:500]},
                         comment="The card was not written to MLflow; it is written again from the card page.")
        return PublishState.FAILED
    with transaction.atomic():
        CardRevision.objects.filter(pk=rev.pk, publish_state=PublishState.WRITING).update(
            publish_state=PublishState.WRITTEN, published_at=timezone.now(), publish_error="")
        # The mirror takes what was written, so the next sync sees nothing new.
        mv = ModelVersion.objects.filter(model=card.model, version=version).first()
        if mv is not None:
            mv.description = description
            mv.tags = {**(mv.tags or {}), selectors.LINK_TAG: tag}
            mv.save(update_fields=["description", "tags"])
        audit.record(**who, action="model_card.published", model=name, version=version,
                     after={"revision": rev.number, "sent": sent, "digest": selectors.digest(description),
                            "tag": {selectors.LINK_TAG: tag}},
                     comment=f"Model card revision {rev.number} is {name} v{version}'s description in MLflow.")
    return PublishState.WRITTEN


def card_publish_again(*, actor, model_name: str, version: int) -> str:
    """Write the card in force to MLflow again (after a failure, or over a description someone changed
    in MLflow): the client reads MLflow first and sends nothing that is already there."""
    model = _model_for(actor, model_name)
    if not may_edit(actor, model):
        raise PermissionDenied(f"You may not write the model cards of {model.name} to MLflow.")
    card = selectors.card_for(model, version)
    if card is None or card.current is None:
        raise TransitionNotAllowed(f"{model.name} v{version} has no approved card to write.")
    CardRevision.objects.filter(pk=card.current_id, publish_state__in=[PublishState.WRITTEN, PublishState.SUPERSEDED,
                                                                       ""]).update(publish_state=PublishState.PENDING)
    return card_publish(revision_id=card.current_id, actor=actor)


# --------------------------------------------------------------------------------------------------
# Templates (the admin's only way to change them)
# --------------------------------------------------------------------------------------------------

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def parse_template(value) -> list[dict]:
    """A template's sections from JSON (text or parsed): [{"key", "title", "required", "guidance"}]."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidInput(f"The sections are not valid JSON: {exc}.") from None
    if not isinstance(value, list) or not value:
        raise InvalidInput("The sections are a non-empty JSON list of {\"key\", \"title\", \"required\"}.")
    out, keys, titles = [], set(), set()
    for i, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise InvalidInput(f"Section {i} is not an object.")
        key, title = str(item.get("key", "")), " ".join(str(item.get("title", "")).split())
        if not _KEY.match(key):
            raise InvalidInput(f"Section {i}: key {key!r} must be lower-case letters, digits and _ (max 40).")
        if not title or len(title) > 80:
            raise InvalidInput(f"Section {i}: a title of 1 to 80 characters is required.")
        if key in keys or title.casefold() in titles:
            raise InvalidInput(f"Section {i}: key {key!r} or title {title!r} is used twice.")
        if not isinstance(item.get("required", False), bool):
            raise InvalidInput(f"Section {i}: required is true or false.")
        unknown = set(item) - {"key", "title", "required", "guidance"}
        if unknown:
            raise InvalidInput(f"Section {i}: unknown field {', '.join(sorted(unknown))}.")
        keys.add(key)
        titles.add(title.casefold())
        out.append({"key": key, "title": title, "required": bool(item.get("required", False)),
                    "guidance": str(item.get("guidance", ""))[:500]})
    return out


def _require_admin(actor, codename: str) -> None:
    if not (getattr(actor, "is_authenticated", False) and actor.is_active
            and (actor.is_superuser or actor.has_perm(f"governance.{codename}"))):
        raise PermissionDenied("You may not change model card templates.")


def _tier(tier: str) -> str:
    tier = tier or ""
    if tier and tier not in risk_selectors.tiers():
        raise InvalidInput(f"{tier!r} is not a risk tier.")
    return tier


def card_template_set(*, actor, tier: str, sections, source_ip: str | None = None) -> CardTemplate:
    """Set a tier's card template (card_template.changed with the sections before and after)."""
    tier = _tier(tier)
    parsed = parse_template(sections)
    with transaction.atomic():
        existing = CardTemplate.objects.select_for_update().filter(tier=tier).first()
        _require_admin(actor, "change_cardtemplate" if existing else "add_cardtemplate")
        before = list(existing.sections) if existing else selectors.template_for(tier)
        if existing is not None and before == parsed:
            return existing
        row = existing or CardTemplate(tier=tier)
        row.sections, row.updated_by = parsed, actor.get_username()
        row.save()
        audit.record(actor=actor, action="card_template.changed", before={"tier": tier, "sections": before},
                     after={"tier": tier, "sections": parsed}, source_ip=source_ip,
                     comment=f"card template of {risk_selectors.tier_label(tier) if tier else 'models without a tier'}"
                             f" changed: required {', '.join(s['title'] for s in parsed if s['required']) or 'none'}")
    return row


def card_template_reset(*, actor, tier: str, source_ip: str | None = None) -> None:
    """Back to the built-in template (card_template.reset)."""
    _require_admin(actor, "delete_cardtemplate")
    with transaction.atomic():
        existing = CardTemplate.objects.select_for_update().filter(tier=tier or "").first()
        if existing is None:
            return
        before = list(existing.sections)
        existing.delete()
        audit.record(actor=actor, action="card_template.reset", before={"tier": tier, "sections": before},
                     after={"tier": tier, "sections": selectors.template_for(tier)}, source_ip=source_ip,
                     comment="card template back to the built-in default")
