"""/api/v1/requests/: list/filter, detail, create, and the four transitions. Thin: parse, call one
service, serialise. Errors come out as {"detail": ...} with the status governance.errors assigns; invalid
input as 400 {"detail": ..., "fields": {field: [messages]}} before any service runs."""

from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.errors import KNOWN_ERRORS, detail, http_status
from governance.workflow import services as workflow
from governance.workflow.api.serializers import (
    BreakGlassSerializer,
    HeldAtSerializer,
    RequestCreateSerializer,
    RequestDetailSerializer,
    RequestFilterSerializer,
    RequestSerializer,
    TransitionSerializer,
)
from governance.workflow.timemachine import held_at
from registry_ui.client_ip import client_ip
from registry_ui.validation import flat_errors, invalid_input_body


class SignedIn(BasePermission):
    """Authentication only: what a user may see and do is decided per object by
    governance.access, which the selectors and services apply."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)


class GovernanceAPIView(APIView):
    permission_classes = [SignedIn]

    def handle_exception(self, exc):
        if isinstance(exc, KNOWN_ERRORS):
            return Response({"detail": detail(exc)}, status=http_status(exc))
        if isinstance(exc, ValidationError):
            return Response(invalid_input_body(flat_errors(exc.detail)), status=400)
        if isinstance(exc, APIException):
            return super().handle_exception(exc)
        raise exc



# Query parameter -> PromotionRequest field it filters (exact match).
FILTERS = {"state": "state", "model": "model_name", "version": "version", "target_stage": "target_stage",
           "target_alias": "target_alias", "requester": "requester_username"}


class RequestListCreate(GovernanceAPIView):
    def get(self, request):
        params = RequestFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = {field: params.validated_data.get(key) for key, field in FILTERS.items()}
        qs = workflow.requests_visible_to(request.user).prefetch_related("approvals")
        qs = qs.filter(**{field: value for field, value in filters.items() if value not in (None, "")})
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        data = RequestSerializer(page, many=True, context={"user": request.user}).data
        return paginator.get_paginated_response(data)

    def post(self, request):
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


class BreakGlass(GovernanceAPIView):
    """POST: deploy or roll back without approval (ops with the break-glass permission), reason required."""

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


class HeldAt(GovernanceAPIView):
    """GET ?model=&target=alias:champion&at=<ISO date-time>: what held the target then, who approved it."""

    def get(self, request):
        params = HeldAtSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        kind, _, name = data["target"].partition(":")
        target = {"target_stage": name} if kind == "stage" else {"target_alias": name}
        return Response(held_at(user=request.user, model_name=data["model"], at=data["at"], **target))


class RequestDetail(GovernanceAPIView):
    def get(self, request, pk: int):
        req = workflow.get_request_for(request.user, pk)
        return Response(RequestDetailSerializer(req, context={"user": request.user}).data)


class RequestTransition(GovernanceAPIView):
    action_name = ""

    def post(self, request, pk: int):
        serializer = TransitionSerializer(data=request.data, context={"action": self.action_name})
        serializer.is_valid(raise_exception=True)
        service = {
            "approve": workflow.promotion_request_approve,
            "reject": workflow.promotion_request_reject,
            "cancel": workflow.promotion_request_cancel,
            "deploy": workflow.promotion_request_deploy,
            "review": workflow.emergency_review_close,
        }[self.action_name]
        req = service(request_id=pk, actor=request.user, source_ip=client_ip(request), **serializer.service_kwargs())
        return Response(RequestDetailSerializer(req, context={"user": request.user}).data)
