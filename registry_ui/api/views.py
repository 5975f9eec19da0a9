"""The read-only registry API (thin: parse, call a selector, serialise)."""

from django.utils import timezone
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from registry_ui.api import selectors
from registry_ui.api.serializers import (
    ModelDetailSerializer,
    ModelListParams,
    ModelSummarySerializer,
    PageParams,
    RunSerializer,
    VersionDetailSerializer,
    VersionSummarySerializer,
)
from registry_ui.mirror.models import SyncState
from registry_ui.validation import flat_errors, invalid_input_body


def _parsed(params_serializer, request) -> dict:
    """The query parameters, validated: a bad one is a 400 {"detail": ..., "fields": {...}}."""
    params = params_serializer(data=request.query_params)
    if not params.is_valid():
        raise ValidationError(invalid_input_body(flat_errors(params.errors)))
    return params.validated_data


class ModelList(generics.ListAPIView):
    """GET models/?q=&tag=key:value&stage=&alias= (tag may repeat; all filters AND)."""

    serializer_class = ModelSummarySerializer

    def get_queryset(self):
        params = _parsed(ModelListParams, self.request)
        try:
            return selectors.model_search(user=self.request.user, q=params.get("q", ""), tags=params.get("tag", []),
                                          stage=params.get("stage", ""), alias=params.get("alias", "").lstrip("@"))
        except selectors.BadFilter as exc:
            raise ValidationError(invalid_input_body({"non_field_errors": [str(exc)]})) from exc


class ModelDetail(APIView):
    def get(self, request, name: str):
        return Response(ModelDetailSerializer(selectors.model_get(user=request.user, name=name)).data)


class VersionList(generics.ListAPIView):
    serializer_class = VersionSummarySerializer

    def get_queryset(self):
        _parsed(PageParams, self.request)
        _model, versions = selectors.version_list(user=self.request.user, name=self.kwargs["name"])
        return versions


class VersionDetail(APIView):
    def get(self, request, name: str, version: int):
        obj, run, aliases = selectors.version_get(user=request.user, name=name, version=version)
        data = VersionDetailSerializer(obj).data
        data["aliases"] = aliases
        data["run"] = RunSerializer(run).data if run else None
        return Response(data)


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
