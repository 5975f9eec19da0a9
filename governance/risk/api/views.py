"""/api/v1/risk/: read tiers and findings; request (and decide) a tier change; raise a finding, propose
its closure, accept or decline it. Thin: parse, call one service or selector, serialise. Permission,
separation of duties and audit are the services' (governance/risk/services.py), exactly as for the
pages; errors take the one shape of governance.errors.api_exception_handler; `token_scope` names the
token scope each write needs (governance/tokens/auth.py)."""

from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.access import visible_models
from governance.risk import selectors, services
from governance.risk.api.filters import FindingFilterSet, ModelTierFilterSet
from governance.risk.api.serializers import (
    DecisionSerializer,
    FindingDetailSerializer,
    FindingRaiseSerializer,
    FindingSerializer,
    ModelTierDetailSerializer,
    ModelTierSerializer,
    NoteSerializer,
    TierChangeRequestSerializer,
    TierChangeSerializer,
    TierListSerializer,
    tier_definitions,
)
from governance.risk.models import Finding, ModelRiskTier
from governance.tokens.models import TokenScope
from registry_ui.api.schema import errors, ok
from registry_ui.api.views import check_page
from registry_ui.client_ip import client_ip
from registry_ui.mirror.models import RegisteredModel

TAGS = ["risk"]
NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="The registered model's name.",
                        examples=[OpenApiExample("a model", value="churn-model")])
PK = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The object's id.")
TIER_CHANGE_EXAMPLE = {"id": 4, "model": "churn-model", "from_tier": "", "to_tier": "tier1",
                       "reason": "Decides credit limits", "requester": "ana", "state": "pending", "decided_by": "",
                       "decision_comment": "", "created_at": "2026-12-03T10:00:00Z", "decided_at": None}
TIER_EXAMPLE = {"model": "churn-model", "tier": "tier1", "label": "Tier 1",
                "meaning": "High risk: material decisions, regulated use; full validation",
                "policy": {"quorum": 2, "require_validation": True, "approval_validity_days": 180},
                "set_at": "2026-12-03T10:05:00Z", "pending": None, "history": [
                    {**TIER_CHANGE_EXAMPLE, "state": "approved", "decided_by": "bo",
                     "decided_at": "2026-12-03T10:05:00Z"}]}
FINDING_EXAMPLE = {"id": 9, "model": "churn-model", "version": 1, "severity": "blocking",
                   "description": "Score drift on the 2026 Q3 segment is not explained", "owner": "ana",
                   "due_date": "2026-12-17", "state": "open", "overdue": False, "raised_by": "bo",
                   "remediation_note": "", "closed_by": "", "created_at": "2026-12-03T10:00:00Z", "closed_at": None}


def _models(request):
    return visible_models(request.user, RegisteredModel.objects.all())


def _tier_row(model, tier_row) -> dict:
    tier = tier_row.tier if tier_row else ""
    return {"model": model.name, "tier": tier, "label": selectors.tier_label(tier),
            "set_at": tier_row.set_at if tier_row else None}


class TierList(generics.ListAPIView):
    """The configured tiers, and the models the caller may see with their tier."""

    serializer_class = ModelTierSerializer
    filterset_class = ModelTierFilterSet

    def get_queryset(self):
        check_page(self.request)
        tiers = ModelRiskTier.objects.filter(model=OuterRef("pk"))
        return _models(self.request).annotate(_tier=Subquery(tiers.values("tier")[:1]),
                                              _set_at=Subquery(tiers.values("set_at")[:1])).order_by("name")

    @extend_schema(tags=TAGS, summary="List risk tiers: the configured ones, and each visible model's",
                   responses={**ok(TierListSerializer, "The tiers (key, label, meaning, default policy) and a page "
                                                       "of models by name with their tier ('' when unassigned).",
                                   {"tiers": [{"key": "tier1", "label": "Tier 1", "meaning": "High risk",
                                               "policy": {"quorum": 2}}], "count": 1, "next": None,
                                    "previous": None, "results": [{"model": "churn-model", "tier": "tier1",
                                                                   "label": "Tier 1",
                                                                   "set_at": "2026-12-03T10:05:00Z"}]}),
                              **errors(400, 404)})
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        rows = [{"model": m.name, "tier": m._tier or "", "label": selectors.tier_label(m._tier or ""),
                 "set_at": m._set_at} for m in page]
        response = self.get_paginated_response(ModelTierSerializer(rows, many=True).data)
        response.data = {"tiers": tier_definitions(), **response.data}
        return response


class TierDetail(APIView):
    @extend_schema(tags=TAGS, summary="Read a model's risk tier, its pending change and its history",
                   parameters=[NAME], responses={**ok(ModelTierDetailSerializer, "The tier in force.", TIER_EXAMPLE),
                                                 **errors(404)})
    def get(self, request, name: str):
        model = get_object_or_404(_models(request), name=name)
        row = ModelRiskTier.objects.filter(model=model).first()
        tier = row.tier if row else ""
        body = {**_tier_row(model, row), "meaning": (selectors.tiers().get(tier) or {}).get("meaning", ""),
                "policy": selectors.tier_policy(tier), "pending": selectors.pending_tier_change(model),
                "history": selectors.tier_changes(model)}
        return Response(ModelTierDetailSerializer(body).data)


class TierChangeRequest(APIView):
    token_scope = TokenScope.REQUEST

    @extend_schema(tags=TAGS, summary="Ask for a model's risk tier to change",
                   description="Anyone who may request or approve on the model; a second person (an approver, "
                               "never the requester) decides it. A token needs scope `request` or wider. One "
                               "pending change per model (409 while one is pending).",
                   request=TierChangeRequestSerializer,
                   examples=[OpenApiExample("to Tier 1", request_only=True, value={
                       "model": "churn-model", "tier": "tier1", "reason": "Decides credit limits"})],
                   responses={**ok(TierChangeSerializer, "The pending change.", TIER_CHANGE_EXAMPLE, 201),
                              **errors(400, 404, 409)})
    def post(self, request):
        serializer = TierChangeRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        change = services.tier_change_request(actor=request.user, model_name=data["model"], tier=data["tier"],
                                              reason=data["reason"], source_ip=client_ip(request))
        return Response(TierChangeSerializer(change).data, status=status.HTTP_201_CREATED)


def _tier_decision_view(action: str):
    service = {"approve": services.tier_change_approve, "reject": services.tier_change_reject}[action]

    class Decision(APIView):
        token_scope = TokenScope.FULL

        @extend_schema(tags=TAGS, summary=f"{action.title()} a pending tier change",
                       description="An approver of the model other than the requester; "
                                   + ("a comment is required; " if action == "reject" else "")
                                   + "a token needs scope `full`.",
                       parameters=[PK], request=DecisionSerializer, operation_id=f"risk_tier_change_{action}",
                       examples=[OpenApiExample("comment", request_only=True, value={"comment": "agreed"})],
                       responses={**ok(TierChangeSerializer, "The change after the decision.",
                                       {**TIER_CHANGE_EXAMPLE, "state": "approved" if action == "approve"
                                        else "rejected", "decided_by": "bo"}),
                                  **errors(400, 404, 409)})
        def post(self, request, pk: int):
            serializer = DecisionSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            change = service(actor=request.user, change_id=pk, comment=serializer.validated_data["comment"],
                             source_ip=client_ip(request))
            return Response(TierChangeSerializer(change).data)

    Decision.__name__ = Decision.__qualname__ = f"TierChange{action.title()}"
    return Decision


TierChangeApprove, TierChangeReject = (_tier_decision_view(a) for a in ("approve", "reject"))


class FindingListRaise(generics.ListAPIView):
    serializer_class = FindingSerializer
    filterset_class = FindingFilterSet
    token_scope = TokenScope.FULL

    def get_queryset(self):
        check_page(self.request)
        return Finding.objects.filter(model__in=_models(self.request)).select_related("model")

    @extend_schema(tags=TAGS, summary="List findings on the models the caller may see (newest first)",
                   responses={**ok(FindingSerializer(many=True), "A page of findings.", None), **errors(400, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=TAGS, summary="Raise a finding on a model or one of its versions",
                   description="An approver of the model; a token needs scope `full`. A `blocking` finding "
                               "refuses approval (and deploy) of the version going up until its closure is "
                               "accepted by someone other than its owner.",
                   request=FindingRaiseSerializer,
                   examples=[OpenApiExample("blocking on v1", request_only=True, value={
                       "model": "churn-model", "version": 1, "severity": "blocking",
                       "description": "Score drift on the 2026 Q3 segment is not explained", "owner": "ana",
                       "due_date": "2026-12-17"})],
                   responses={**ok(FindingDetailSerializer, "The new finding.", {**FINDING_EXAMPLE, "history": []},
                                   201), **errors(400, 404)})
    def post(self, request):
        serializer = FindingRaiseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        finding = services.finding_raise(actor=request.user, model_name=data["model"], version=data["version"],
                                         severity=data["severity"], description=data["description"],
                                         owner_username=data["owner"], due_date=data["due_date"],
                                         source_ip=client_ip(request))
        return Response(FindingDetailSerializer(finding).data, status=status.HTTP_201_CREATED)


class FindingDetail(APIView):
    @extend_schema(tags=TAGS, summary="Read a finding and its history (its audit events)", parameters=[PK],
                   responses={**ok(FindingDetailSerializer, "The finding.", {**FINDING_EXAMPLE, "history": [
                       {"action": "finding.raised", "actor": "bo", "timestamp": "2026-12-03T10:00:00Z",
                        "comment": "Score drift on the 2026 Q3 segment is not explained"}]}), **errors(404)})
    def get(self, request, pk: int):
        finding = get_object_or_404(Finding.objects.filter(model__in=_models(request)).select_related("model"), pk=pk)
        return Response(FindingDetailSerializer(finding).data)


_FINDING_STEPS = {
    "propose": (services.finding_propose_closure, "note", NoteSerializer, TokenScope.REQUEST,
                "Propose closing a finding, with the remediation note",
                "Its owner or an approver; another approver accepts it. A token needs scope `request` or wider.",
                "closure_proposed"),
    "accept": (services.finding_accept_closure, "comment", DecisionSerializer, TokenScope.FULL,
               "Accept a proposed closure: the finding is closed",
               "An approver of the model who is not the finding's owner; a token needs scope `full`.", "closed"),
    "decline": (services.finding_decline_closure, "comment", DecisionSerializer, TokenScope.FULL,
                "Decline a proposed closure: the finding is open again",
                "An approver who is not the owner, with a comment; a token needs scope `full`.", "open"),
}


def _finding_step_view(action: str):
    service, arg, body, scope, summary, description, after = _FINDING_STEPS[action]

    class Step(APIView):
        token_scope = scope

        @extend_schema(tags=TAGS, summary=summary, description=description, parameters=[PK], request=body,
                       operation_id=f"risk_finding_{action}",
                       examples=[OpenApiExample("text", request_only=True, value={arg: "re-validated, run 4312"})],
                       responses={**ok(FindingDetailSerializer, "The finding after the step.",
                                       {**FINDING_EXAMPLE, "state": after, "history": []}),
                                  **errors(400, 404, 409)})
        def post(self, request, pk: int):
            serializer = body(data=request.data)
            serializer.is_valid(raise_exception=True)
            finding = service(actor=request.user, finding_id=pk, source_ip=client_ip(request),
                              **{arg: serializer.validated_data[arg]})
            return Response(FindingDetailSerializer(finding).data)

    Step.__name__ = Step.__qualname__ = f"Finding{action.title()}"
    return Step


FindingPropose, FindingAccept, FindingDecline = (_finding_step_view(a) for a in ("propose", "accept", "decline"))
