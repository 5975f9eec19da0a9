"""GET /api/v1/compare/?model=m&versions=1,2,3 (or versions=model-a:1,model-b:2, or repeated v=model:1):
the comparison (metrics with best per row and deltas against `baseline`, params with a `differs` flag)
as JSON. Session or token auth; errors are {"detail": ...} (400 bad selection, 403 no role, 404
unknown or out-of-scope version)."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from registry_ui.api.schema import errors, ok
from registry_ui.pages import selectors
from registry_ui.pages.compare import compare, comparison_json


class CompareSerializer(serializers.Serializer):
    """The comparison as registry_ui.pages.compare.comparison_json builds it."""

    baseline = serializers.CharField(allow_null=True, help_text="The label deltas are computed against.")
    versions = serializers.ListField(child=serializers.DictField(), help_text="The versions compared.")
    metrics = serializers.ListField(child=serializers.DictField(), help_text="Rows: values, best, deltas.")
    params = serializers.ListField(child=serializers.DictField(), help_text="Rows: values and `differs`.")


@extend_schema(tags=["registry"], summary="Compare versions (metrics and params)", parameters=[
    OpenApiParameter("model", str, description="The model whose versions `versions` names by number."),
    OpenApiParameter("versions", str, many=True, description='"1,2,3", or "model-a:1,model-b:2" across models.'),
    OpenApiParameter("v", str, many=True, description='Repeatable "model:version".'),
    OpenApiParameter("baseline", str, description="The version deltas are computed against."),
], responses={**ok(CompareSerializer, "The comparison."), **errors(400, 404)})
class CompareView(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        params = request.query_params
        try:
            refs = selectors.parse_version_refs(
                model=params.get("model", ""), versions=[*params.getlist("versions"), *params.getlist("v")]
            )
        except selectors.BadSelection as exc:
            raise ParseError(str(exc)) from exc
        if len(refs) < 2:
            raise ParseError("Name at least two versions: ?model=<name>&versions=1,2 or ?versions=<model>:<v>,...")
        try:
            items = selectors.compare_items(request.user, refs)
        except Http404 as exc:
            raise NotFound(str(exc)) from exc
        return Response(comparison_json(items, compare(items, params.get("baseline"))))
