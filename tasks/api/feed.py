"""The calendar feed's secret URL: whether there is one, create or rotate it (the URL is
answered this once) and revoke it, at /api/feed/."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from ..feeds import feed_url


class FeedStateSerializer(serializers.Serializer):
    """Whether a feed URL exists; never the URL itself (only its digest is kept)."""

    exists = serializers.BooleanField(help_text="Whether you have a feed URL.")
    prefix = serializers.CharField(
        allow_null=True, help_text="The secret's first characters, to tell URLs apart."
    )
    created_at = serializers.DateTimeField(allow_null=True)


class NewFeedSerializer(serializers.Serializer):
    url = serializers.URLField(
        help_text="The feed's secret URL (add `?events=1` for events instead of to-dos). "
        "Store it now: it is not shown again."
    )
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()


def _state(token) -> dict:
    return {
        "exists": token is not None,
        "prefix": token.prefix if token else None,
        "created_at": token.created_at if token else None,
    }


class FeedView(APIView):
    """Your iCal feed URL, for calendar apps (see docs/calendar-feed.md)."""

    @extend_schema(summary="Whether you have a calendar feed URL", responses=FeedStateSerializer)
    def get(self, request):
        token = selectors.feed_token_get(user=request.user)
        return Response(FeedStateSerializer(_state(token)).data)

    @extend_schema(
        summary="Create or rotate your calendar feed URL; it is answered this once",
        request=None,
        responses={201: NewFeedSerializer},
    )
    def post(self, request):
        token, secret = services.feed_token_create(user=request.user)
        data = {"url": feed_url(request, secret), **_state(token)}
        return Response(NewFeedSerializer(data).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke your calendar feed URL",
        request=None,
        responses={204: OpenApiResponse(description="Revoked (or there was none): it is a 404.")},
    )
    def delete(self, request):
        services.feed_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
