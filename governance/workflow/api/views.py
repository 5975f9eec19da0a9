"""/api/v1/requests/ and /api/v1/policies/: what a pipeline needs (create, read, wait, deploy, roll back)
and the policies. Thin: parse, call one service or selector, serialise. Errors take the one shape of
governance.errors.api_exception_handler; a token's scope is enforced by governance.tokens.auth
(`token_scope` below names the scope each write needs)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.access import visible_models
from governance.tokens.models import TokenScope
from governance.workflow import policy_changes
from governance.workflow import services as workflow
from governance.workflow.api.serializers import (
    BreakGlassSerializer,
    HeldAtSerializer,
    PolicyChangeSerializer,
    PolicySerializer,
    RequestCreateSerializer,
    RequestDetailSerializer,
    RequestSerializer,
    TransitionSerializer,
    WaitParams,
    policy_body,
)
from governance.workflow.filters import RequestFilterSet
from governance.workflow.models import PromotionRequest
from governance.workflow.timemachine import held_at
from governance.workflow.waiting import request_wait
from registry_ui.api.schema import errors, ok
from registry_ui.api.views import check_page
from registry_ui.client_ip import client_ip
from registry_ui.mirror.models import RegisteredModel

TAGS = ["requests"]
PK = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The promotion request's id.")
REQUEST_EXAMPLE = {
    "id": 12, "model": "fraud-detector", "version": 7, "target": {"kind": "alias", "name": "champion",
                                                                  "label": "@champion"},
    "target_stage": "", "target_alias": "champion", "archive_existing": False, "state": "pending",
    "justification": "CI run 4312: AUC 0.91", "requester": "ci-fraud", "rollback": False, "urgent": False,
    "override": False, "approvals": [], "decided_by": "", "decision_comment": "", "deployed_by": "",
    "deployed_at": None, "error": "", "created_at": "2026-12-03T10:00:00Z", "updated_at": "2026-12-03T10:00:00Z",
    "gate_results": [{"gate": "tag:validation_status", "passed": True, "detail": "passed"}],
    "needs_reapproval": False, "reapproval": None,
}


def _detail(request, req):
    return Response(RequestDetailSerializer(req, context={"user": request.user}).data)


class RequestListCreate(generics.ListCreateAPIView):
    serializer_class = RequestSerializer
    filterset_class = RequestFilterSet
    token_scope = TokenScope.REQUEST

    def get_queryset(self):
        check_page(self.request)
        return workflow.requests_visible_to(self.request.user).prefetch_related("approvals")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "user": self.request.user}

    @extend_schema(tags=TAGS, summary="List promotion requests", responses={
        **ok(RequestSerializer(many=True), "Requests on models the caller may see, newest first."),
        **errors(400, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS, summary="Ask for a promotion (or a rollback)", request=RequestCreateSerializer,
        description="Needs a token of scope `request` or wider. `rollback: true` asks to put the previous "
                    "holder of the target back (no `version`).",
        examples=[OpenApiExample("promote to @champion", request_only=True, value={
            "model": "fraud-detector", "version": 7, "target_alias": "champion",
            "justification": "CI run 4312: AUC 0.91"}),
                  OpenApiExample("roll back @champion", request_only=True, value={
            "model": "fraud-detector", "target_alias": "champion", "rollback": True, "urgent": True,
            "justification": "incident 88"})],
        responses={**ok(RequestDetailSerializer, "The new request with its frozen evidence.", REQUEST_EXAMPLE, 201),
                   **errors(400, 404, 409, 503)})
    def post(self, request, *args, **kwargs):
        serializer = RequestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        common = {"actor": request.user, "model_name": data["model"], "target_stage": data["target_stage"],
                  "target_alias": data["target_alias"], "justification": data["justification"],
                  "source_ip": client_ip(request)}
        if data["rollback"]:
            req = workflow.promotion_request_rollback(urgent=data["urgent"], **common)
        else:
            req = workflow.promotion_request_create(version=data["version"], archive_existing=data["archive_existing"],
                                                    operation=data["operation"], **common)
        return Response(RequestDetailSerializer(req, context={"user": request.user}).data,
                        status=status.HTTP_201_CREATED)


class RequestDetail(APIView):
    @extend_schema(
        tags=TAGS, summary="Read a request (optionally wait for it to change)", parameters=[PK, WaitParams],
        description="With `wait=N` the answer comes as soon as the request's state is no longer `while` "
                    "(default `pending`), or after N seconds (at most API_WAIT_MAX_SECONDS, 30 by default) with "
                    "the state unchanged: loop until the state is one you act on.",
        responses={**ok(RequestDetailSerializer, "The request, its evidence, history and what the caller may do "
                                                 "next.", REQUEST_EXAMPLE), **errors(400, 404)})
    def get(self, request, pk: int):
        params = WaitParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        wait = params.validated_data.get("wait")
        if wait:
            req = request_wait(user=request.user, request_id=pk, while_state=params.validated_data["while"],
                               timeout=wait)
        else:
            req = workflow.get_request_for(request.user, pk)
        return _detail(request, req)


_TRANSITIONS = {
    "approve": (workflow.promotion_request_approve, TokenScope.FULL, "Approve a pending request",
                "The caller needs the approver role and must not be the requester; a token needs scope `full`."),
    "reject": (workflow.promotion_request_reject, TokenScope.FULL, "Reject a pending request (comment required)",
               "A token needs scope `full`."),
    "cancel": (workflow.promotion_request_cancel, TokenScope.REQUEST, "Cancel a pending or approved request",
               "The requester (or staff); a token needs scope `request` or wider."),
    "deploy": (workflow.promotion_request_deploy, TokenScope.DEPLOY, "Deploy an approved request to MLflow",
               "Writes MLflow exactly once, reads it back; a token needs scope `deploy` or wider. 502 when MLflow "
               "could not be written (the request is then `failed` and may be deployed again)."),
    "review": (workflow.emergency_review_close, TokenScope.FULL, "Close the post-hoc review of a break-glass deploy",
               "An approver other than whoever broke the glass, with a comment (what was found); a token needs "
               "scope `full`."),
}


def _transition_view(action: str):
    service, scope, summary, description = _TRANSITIONS[action]

    class Transition(APIView):
        token_scope = scope

        @extend_schema(tags=TAGS, summary=summary, description=description, parameters=[PK],
                       request=TransitionSerializer, operation_id=f"requests_{action}",
                       examples=[OpenApiExample("comment", request_only=True, value={"comment": "looks good"})],
                       responses={**ok(RequestDetailSerializer, "The request after the step.", REQUEST_EXAMPLE),
                                  **errors(400, 404, 409, 502, 503)})
        def post(self, request, pk: int):
            serializer = TransitionSerializer(data=request.data, context={"action": action})
            serializer.is_valid(raise_exception=True)
            req = service(request_id=pk, actor=request.user, source_ip=client_ip(request),
                          **serializer.service_kwargs())
            return _detail(request, req)

    Transition.__name__ = Transition.__qualname__ = f"Request{action.title()}"
    return Transition


RequestApprove, RequestReject, RequestCancel, RequestDeploy, RequestReview = (
    _transition_view(a) for a in ("approve", "reject", "cancel", "deploy", "review"))


class BreakGlass(APIView):
    """Deploy or roll back without approval (ops holding the break-glass permission), reason required."""

    token_scope = TokenScope.DEPLOY

    @extend_schema(
        tags=TAGS, summary="Break the glass: deploy or roll back now, without approval", request=BreakGlassSerializer,
        description="For incidents. Needs the deploy role and the `break_glass_promotion` permission; a token needs "
                    "scope `deploy` or wider. The request is marked as an emergency, approvers are told at once, and "
                    "a post-hoc review stays open until an approver closes it.",
        examples=[OpenApiExample("roll back @champion", request_only=True, value={
            "model": "fraud-detector", "target_alias": "champion", "rollback": True,
            "reason": "v7 leaks memory in production"})],
        responses={**ok(RequestDetailSerializer, "The emergency request after its deploy.", REQUEST_EXAMPLE, 201),
                   **errors(400, 404, 409, 502, 503)})
    def post(self, request):
        serializer = BreakGlassSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        req = workflow.promotion_request_break_glass(
            actor=request.user, model_name=data["model"], version=data.get("version"), rollback=data["rollback"],
            target_stage=data["target_stage"], target_alias=data["target_alias"], reason=data["reason"],
            source_ip=client_ip(request))
        return Response(RequestDetailSerializer(req, context={"user": request.user}).data,
                        status=status.HTTP_201_CREATED)


HELD_AT_EXAMPLE = {"model": "fraud-detector", "target": "@champion", "at": "2026-03-14T10:00:00+00:00",
                   "holders": [7], "version": 7, "known": True, "since": "2026-03-12T09:30:00+00:00",
                   "via": "deploy", "approval": {"request": 12, "approvers": ["ana"], "evidence": {"gates": []}}}


class HeldAt(APIView):
    """What held a stage or alias at a moment, and who approved it (from the audit trail)."""

    @extend_schema(
        tags=TAGS, summary="Time machine: what held a target at a date-time, and who approved it",
        parameters=[HeldAtSerializer],
        responses={**ok(OpenApiTypes.OBJECT, "The holder then, the approval and the evidence frozen at it.",
                        HELD_AT_EXAMPLE), **errors(400, 404)})
    def get(self, request):
        params = HeldAtSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        kind, _, name = data["target"].partition(":")
        target = {"target_stage": name} if kind == "stage" else {"target_alias": name}
        return Response(held_at(user=request.user, model_name=data["model"], at=data["at"], **target))

# --- Policies -------------------------------------------------------------------------------------------

NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="The registered model's name.",
                        examples=[OpenApiExample("a model", value="churn-model")])
POLICY_EXAMPLE = {
    "model": "fraud-detector",
    "policy": {"scoped": False, "required_tags": {"validation_status": "passed"},
               "metric_thresholds": {"auc": {"min": 0.85}}, "compare_metric": "auc", "higher_is_better": True,
               "require_lineage": True, "production_quorum": 2},
    "effective": {"required_tags": {"validation_status": "passed"}, "metric_thresholds": {"auc": {"min": 0.85}},
                  "compare_metric": "auc", "higher_is_better": True, "require_lineage": True, "quorum": 2},
}


class PolicyDetail(APIView):
    """A model's own policy (null: the global defaults apply) and the policy in force. Changes go through
    governance.workflow.policy_changes (permission, write, audit event with before/after)."""

    token_scope = TokenScope.FULL

    def _model(self, request, name: str) -> RegisteredModel:
        return get_object_or_404(visible_models(request.user, RegisteredModel.objects.all()), name=name)

    @extend_schema(tags=["policies"], summary="Read a model's policy", parameters=[NAME],
                   responses={**ok(PolicySerializer, "Its own policy and the one in force.", POLICY_EXAMPLE),
                              **errors(404)})
    def get(self, request, name: str):
        return Response(policy_body(self._model(request, name)))

    @extend_schema(tags=["policies"], summary="Change a model's policy (the fields given)", parameters=[NAME],
                   request=PolicyChangeSerializer,
                   description="Needs the change (or add) model policy permission (admins); a token needs scope "
                               "`full`. Audited as policy.created / policy.changed with before and after.",
                   examples=[OpenApiExample("require two approvals", request_only=True,
                                            value={"production_quorum": 2, "compare_metric": "auc"})],
                   responses={**ok(PolicySerializer, "The policy after the change.", POLICY_EXAMPLE),
                              **errors(400, 404)})
    def patch(self, request, name: str):
        model = self._model(request, name)
        policy_changes.require_policy_writer(request.user)
        serializer = PolicyChangeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if not serializer.validated_data:
            raise ValidationError({"non_field_errors": ["Name at least one policy field to change."]})
        policy_changes.model_policy_set(actor=request.user, model=model, changes=serializer.validated_data,
                                        source_ip=client_ip(request))
        return Response(policy_body(model))

    @extend_schema(tags=["policies"], summary="Remove a model's policy (the global defaults apply)",
                   parameters=[NAME], request=None,
                   responses={**ok(PolicySerializer, "The policy after removal (policy: null).", POLICY_EXAMPLE),
                              **errors(404)})
    def delete(self, request, name: str):
        model = self._model(request, name)
        policy_changes.require_policy_writer(request.user)
        policy_changes.model_policy_delete(actor=request.user, model=model, source_ip=client_ip(request))
        return Response(policy_body(model))


__all__ = ["RequestListCreate", "RequestDetail", "RequestApprove", "RequestReject", "RequestCancel",
           "RequestDeploy", "RequestReview", "BreakGlass", "HeldAt", "PolicyDetail", "PromotionRequest"]
