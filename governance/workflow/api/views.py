"""/api/v1/requests/: list/filter, detail, create, and the four transitions. Thin: parse, call one
service, serialise. Errors come out as {"detail": ...} with the status governance.errors assigns."""

from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.errors import KNOWN_ERRORS, detail, http_status
from governance.workflow import services as workflow
from governance.workflow.api.serializers import (
    RequestCreateSerializer,
    RequestDetailSerializer,
    RequestSerializer,
    TransitionSerializer,
)
from governance.workflow.models import RequestState
from registry_ui.client_ip import client_ip


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
            errors = exc.detail
            if isinstance(errors, dict):
                text = "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                                 for k, v in errors.items())
            else:
                text = " ".join(map(str, errors)) if isinstance(errors, list) else str(errors)
            return Response({"detail": text.replace("non_field_errors: ", "")}, status=400)
        if isinstance(exc, APIException):
            return super().handle_exception(exc)
        raise exc



class RequestListCreate(GovernanceAPIView):
    def get(self, request):
        qs = workflow.requests_visible_to(request.user).prefetch_related("approvals")
        params = request.query_params
        if params.get("state"):
            if params["state"] not in RequestState.values:
                raise ValidationError({"state": [f"one of {', '.join(RequestState.values)}"]})
            qs = qs.filter(state=params["state"])
        if params.get("model"):
            qs = qs.filter(model_name=params["model"])
        if params.get("version"):
            qs = qs.filter(version=params["version"]) if params["version"].isdigit() else qs.none()
        if params.get("target_stage"):
            qs = qs.filter(target_stage=params["target_stage"])
        if params.get("target_alias"):
            qs = qs.filter(target_alias=params["target_alias"])
        if params.get("requester"):
            qs = qs.filter(requester_username=params["requester"])
        from rest_framework.pagination import PageNumberPagination

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
                                                    **common)
        return Response(RequestDetailSerializer(req, context={"user": request.user}).data,
                        status=status.HTTP_201_CREATED)


class RequestDetail(GovernanceAPIView):
    def get(self, request, pk: int):
        req = workflow.get_request_for(request.user, pk)
        return Response(RequestDetailSerializer(req, context={"user": request.user}).data)


class RequestTransition(GovernanceAPIView):
    action_name = ""

    def post(self, request, pk: int):
        serializer = TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        kwargs = {"request_id": pk, "actor": request.user, "comment": serializer.validated_data["comment"],
                  "source_ip": client_ip(request)}
        service = {
            "approve": workflow.promotion_request_approve,
            "reject": workflow.promotion_request_reject,
            "cancel": workflow.promotion_request_cancel,
            "deploy": workflow.promotion_request_deploy,
        }[self.action_name]
        if self.action_name == "approve":
            kwargs["override"] = serializer.validated_data["override"]
        req = service(**kwargs)
        return Response(RequestDetailSerializer(req, context={"user": request.user}).data)
