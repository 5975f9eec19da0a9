"""GET /api/v1/events/?after=<cursor>&limit=: the outbound events, oldest first, for pipelines that poll."""

from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.errors import InvalidInput
from governance.notify import selectors


class EventFeed(APIView):
    """{"events": [{"id", "type", "timestamp", "data"}, ...], "next": "<cursor>"}: ask again with
    ?after=<next>. Only events on models the caller may see. A bad cursor is a 400 {"detail": ...}."""

    def get(self, request):
        try:
            after = selectors.parse_cursor(request.query_params.get("after"))
            limit = selectors.parse_limit(request.query_params.get("limit"))
        except InvalidInput as exc:
            raise ValidationError({"detail": exc.detail}) from None
        events, cursor = selectors.feed_page(request.user, after=after, limit=limit)
        return Response({"events": events, "next": cursor})
