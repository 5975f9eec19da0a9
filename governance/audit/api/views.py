"""REST API of the audit trail: search (same filters as the page) and verification. Read-only."""

from urllib.parse import urlencode

from django.conf import settings
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.audit import search as audit_selectors
from governance.audit import services as audit_service
from governance.audit.search import AuditFilters, BadFilter


class AuditEventList(APIView):
    """GET /api/v1/audit/?q=&actor=&action=&model=&version=&request=&since=&until=&before=&limit=

    Keyset pagination: `next` carries `before=<seq>`; no total count (stays fast at any size).
    """

    def get(self, request):
        try:
            filters = AuditFilters.from_params(request.query_params)
        except BadFilter as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        raw_before = request.query_params.get("before", "")
        raw_limit = request.query_params.get("limit", "")
        if (raw_before and not raw_before.isdigit()) or (raw_limit and not raw_limit.isdigit()):
            raise ValidationError({"detail": "before and limit must be whole numbers"})
        limit = min(int(raw_limit or settings.AUDIT_PAGE_SIZE), 500) or settings.AUDIT_PAGE_SIZE
        events, next_before = audit_selectors.search_page(request.user, filters,
                                                          before=int(raw_before) if raw_before else None, limit=limit)
        next_url = None
        if next_before:
            query = urlencode({**filters.as_params(), "before": next_before, **({"limit": limit} if raw_limit else {})})
            next_url = request.build_absolute_uri(f"{request.path}?{query}")
        return Response({"results": [audit_selectors.event_row(e) for e in events], "next": next_url})


class AuditVerify(APIView):
    """GET /api/v1/audit/verify/: walk the chain now (auditors and staff)."""

    def get(self, request):
        if not audit_selectors.sees_everything(request.user):
            raise PermissionDenied("Only auditors and staff may verify the audit trail.")
        result, _ = audit_service.audit_verify(source="api")
        return Response(result.as_dict())
