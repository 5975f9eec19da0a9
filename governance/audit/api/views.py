"""REST API of the audit trail: search (same filters as the page) and verification. Read-only."""

from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.audit import search as audit_selectors
from governance.audit import services as audit_service
from governance.audit.api.serializers import AuditPageSerializer, AuditQuerySerializer, VerificationSerializer
from governance.audit.forms import AuditApiSearchForm
from registry_ui.api.schema import errors, ok
from registry_ui.validation import form_errors, invalid_input_body

EVENT_EXAMPLE = {"results": [{
    "seq": 4211, "timestamp": "2026-12-03T10:02:11.120000Z", "actor": "erin", "action": "request.approved",
    "model": "fraud-detector", "version": 7, "request": 12, "comment": "looks good", "source_ip": "10.0.0.8",
    "before": {"state": "pending"}, "after": {"state": "approved"}, "prev_hash": "9f2c...", "hash": "a41b..."}],
    "next": "https://console.example/api/v1/audit/?before=4211"}


@extend_schema(tags=["audit"], summary="Search the audit trail", parameters=[AuditQuerySerializer],
               responses={**ok(AuditPageSerializer, "Events newest first; `next` is the older page.", EVENT_EXAMPLE),
                          **errors(400)})
class AuditEventList(APIView):
    """GET /api/v1/audit/?q=&actor=&action=&model=&version=&request=&since=&until=&before=&limit=

    Keyset pagination: `next` carries `before=<seq>`; no total count (stays fast at any size).
    A bad parameter is a 400 {"detail": ..., "fields": {...}} (the same form as the search page).
    """

    def get(self, request):
        form = AuditApiSearchForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(invalid_input_body(form_errors(form)))
        filters, before, limit = form.filters(), form.cleaned_data["before"], form.page_size()
        events, next_before = audit_selectors.search_page(request.user, filters, before=before, limit=limit)
        next_url = None
        if next_before:
            query = urlencode({**filters.as_params(), "before": next_before,
                               **({"limit": limit} if form.cleaned_data["limit"] else {})})
            next_url = request.build_absolute_uri(f"{request.path}?{query}")
        return Response({"results": [audit_selectors.event_row(e) for e in events], "next": next_url})


@extend_schema(tags=["audit"], summary="Verify the audit chain now (auditors, staff)",
               parameters=[OpenApiParameter(
                   "scope", str, enum=["incremental", "whole"], required=False,
                   description="incremental (default): the events after the newest signed checkpoint, whose "
                               "signature and pinned hashes are checked; whole: every event from seq 1.")],
               responses={**ok(VerificationSerializer, "The result of walking the chain and its checkpoints."),
                          **errors(400)})
class AuditVerify(APIView):
    """GET /api/v1/audit/verify/?scope=incremental|whole: walk the chain now (auditors and staff)."""

    def get(self, request):
        if not audit_selectors.sees_everything(request.user):
            raise PermissionDenied("Only auditors and staff may verify the audit trail.")
        scope = request.query_params.get("scope", "incremental")
        if scope not in ("incremental", "whole"):
            raise ValidationError(invalid_input_body({"scope": ["must be incremental or whole"]}))
        result, _ = audit_service.audit_verify(source="api", whole=scope == "whole")
        return Response(result.as_dict())
