"""The read-only registry API (thin: parse, call a selector, serialise). Filters are the FilterSets of
registry_ui/filters.py (the catalogue page uses the same ones), applied by DRF's filter backend so they
appear in the OpenAPI schema."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from registry_ui.api import selectors
from registry_ui.api.schema import errors, ok
from registry_ui.api.serializers import (
    ModelDetailSerializer,
    ModelSummarySerializer,
    PageParams,
    RunSerializer,
    SyncStatusSerializer,
    VersionDetailResponseSerializer,
    VersionDetailSerializer,
    VersionSummarySerializer,
)
from registry_ui.filters import ModelFilterSet, VersionFilterSet
from registry_ui.mirror.models import ModelVersion, SyncState
from registry_ui.validation import flat_errors, invalid_input_body

NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="The registered model's name, percent-encoded.",
                        examples=[OpenApiExample("a model", value="churn-model")])
VERSION = OpenApiParameter("version", int, OpenApiParameter.PATH, description="The version number.",
                           examples=[OpenApiExample("a version", value=1)])
TAGS = ["registry"]


def check_page(request) -> None:
    params = PageParams(data=request.query_params)
    if not params.is_valid():
        raise ValidationError(invalid_input_body(flat_errors(params.errors)))


@extend_schema(tags=TAGS, summary="Search registered models", responses={
    **ok(ModelSummarySerializer(many=True), "A page of the models the caller may see, by name."), **errors(400, 404)})
class ModelList(generics.ListAPIView):
    """Models the caller may see; all filters combine (AND)."""

    serializer_class = ModelSummarySerializer
    filterset_class = ModelFilterSet

    def get_queryset(self):
        check_page(self.request)
        return selectors.model_search(user=self.request.user)


@extend_schema(tags=TAGS, summary="One registered model", parameters=[NAME], responses={
    **ok(ModelDetailSerializer, "The model with its newest 50 versions."), **errors(404)})
class ModelDetail(APIView):
    def get(self, request, name: str):
        return Response(ModelDetailSerializer(selectors.model_get(user=request.user, name=name)).data)


@extend_schema(tags=TAGS, summary="Versions of a model", parameters=[NAME], responses={
    **ok(VersionSummarySerializer(many=True), "A page of the model's versions, newest first."), **errors(400, 404)})
class VersionList(generics.ListAPIView):
    """Filters apply to the versions themselves: `stage` is the version's stage, `tag` its own tags."""

    serializer_class = VersionSummarySerializer
    filterset_class = VersionFilterSet

    queryset = ModelVersion.objects.none()  # the schema's model; get_queryset answers requests

    def get_queryset(self):
        check_page(self.request)
        _model, versions = selectors.version_list(user=self.request.user, name=self.kwargs["name"])
        return versions


@extend_schema(tags=TAGS, summary="One model version, with its run", parameters=[NAME, VERSION], responses={
    **ok(VersionDetailResponseSerializer, "The version, its aliases and the run snapshot (null if never read)."),
    **errors(404)})
class VersionDetail(APIView):
    def get(self, request, name: str, version: int):
        obj, run, aliases = selectors.version_get(user=request.user, name=name, version=version)
        data = VersionDetailSerializer(obj).data
        data["aliases"] = aliases
        data["run"] = RunSerializer(run).data if run else None
        return Response(data)


@extend_schema(tags=TAGS, summary="Freshness of the mirror", responses={
    **ok(SyncStatusSerializer, "When the mirror was last reconciled with MLflow and how it ended."), **errors()})
class SyncStatus(APIView):
    """When the mirror was last reconciled and how the last attempt ended (no model names: visible to
    every signed-in user)."""

    def get(self, request):
        state = SyncState.get()
        report = state.last_report or {}
        now = timezone.now()
        return Response({
            "last_started_at": state.last_started_at,
            "last_success_at": state.last_success_at,
            "last_error": state.last_error,
            "last_error_at": state.last_error_at,
            "failing": bool(state.last_error_at and (not state.last_success_at
                                                     or state.last_error_at > state.last_success_at)),
            "running": bool(state.lock_owner and state.locked_until and state.locked_until > now),
            "last_report": {k: v for k, v in report.items() if k != "changes"}
            | ({"changes": len(report.get("changes", []))} if report else {}),
        })
