"""GET /api/v1/events/?after=<cursor>&limit=: the outbound events, oldest first, for pipelines that poll."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.notify import selectors
from governance.notify.models import EventKind
from registry_ui.api.schema import errors, ok


class FeedParams(serializers.Serializer):
    after = serializers.CharField(required=False, help_text="The `next` cursor of the previous page; omit to "
                                                            "start from the oldest event.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500,
                                     help_text="Events per page (default EVENT_FEED_PAGE_SIZE, at most 500).")


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The event's id (also the webhook's `webhook-id` stem).")
    type = serializers.ChoiceField(choices=EventKind.choices, help_text="The audit action it derives from.")
    timestamp = serializers.DateTimeField()
    data = serializers.DictField(help_text="model, version, request_id, actor, comment, state, target, url, "
                                           "and error (deploy.failed) or before/after (registry.drift).")


class FeedSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    next = serializers.CharField(help_text="Ask again with ?after=<next> for what happens later.")


FEED_EXAMPLE = {"events": [{"id": "41", "type": "deploy.succeeded", "timestamp": "2026-12-03T10:00:00+00:00",
                            "data": {"audit_seq": 812, "model": "fraud-detector", "version": 7, "request_id": 12,
                                     "actor": "olga", "comment": "", "state": "deployed", "target": "@champion",
                                     "url": "https://governance.example.com/governance/requests/12/"}}],
                "next": "41"}


class EventFeed(APIView):
    """Only events on models the caller may see. A bad cursor is a 400."""

    @extend_schema(tags=["events"], summary="The event feed (for pipelines that poll instead of receiving webhooks)",
                   parameters=[FeedParams],
                   responses={**ok(FeedSerializer, "Events after the cursor, oldest first, and the next cursor.",
                                   FEED_EXAMPLE), **errors(400)})
    def get(self, request):
        # The selectors raise InvalidInput (400 in the API's one error shape) for a cursor or limit it did not give.
        after = selectors.parse_cursor(request.query_params.get("after"))
        limit = selectors.parse_limit(request.query_params.get("limit"))
        events, cursor = selectors.feed_page(request.user, after=after, limit=limit)
        return Response({"events": events, "next": cursor})
