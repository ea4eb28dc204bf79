"""Personal API tokens: list, create (the secret is answered once) and revoke, and the
username-and-password exchange for a new token at /api/auth/token/."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.response import Response

from .. import selectors, services
from ..models import ApiToken, validate_supported_datetime
from .serializers import StrictFieldsMixin


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its secret."""

    prefix = serializers.CharField(
        read_only=True, help_text="The secret's first characters, to tell tokens apart."
    )
    expires_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="null: never expires."
    )

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields


class NewApiTokenSerializer(ApiTokenSerializer):
    """A token just created, with its secret: shown this once, never again."""

    token = serializers.CharField(
        source="secret",
        read_only=True,
        help_text="The secret, for `Authorization: Token <token>`. Store it now: it is not "
        "shown again.",
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenExpiryMixin(serializers.Serializer):
    """``expires_in_days`` or ``expires_at`` (null: never); neither: the default,
    ``API_TOKEN_DEFAULT_EXPIRY_DAYS``."""

    expires_in_days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=services.MAX_API_TOKEN_DAYS,
        write_only=True,
        help_text="Days until the token expires.",
    )
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        write_only=True,
        validators=[validate_supported_datetime],
        help_text=f"When the token expires, at most {services.MAX_API_TOKEN_DAYS} days away; "
        "null: never.",
    )

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if "expires_at" not in attrs and "expires_in_days" not in attrs:
            attrs["expires_in_days"] = settings.API_TOKEN_DEFAULT_EXPIRY_DAYS or None
        return attrs


class ApiTokenCreateSerializer(StrictFieldsMixin, TokenExpiryMixin):
    name = serializers.CharField(max_length=100, help_text="What the token is for.")


class TokenLoginSerializer(TokenExpiryMixin, AuthTokenSerializer):
    """Username and password (django-axes counts failures), and the new token's name."""

    name = serializers.CharField(
        max_length=100, required=False, write_only=True, help_text='Default: "API token (date)".'
    )

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        attrs.setdefault("name", f"API token ({timezone.localdate().isoformat()})")
        return attrs


def token_response(token: ApiToken, secret: str, status_code: int) -> Response:
    token.secret = secret
    return Response(NewApiTokenSerializer(token).data, status=status_code)


@extend_schema_view(
    list=extend_schema(summary="List your API tokens (never their secrets)"),
    create=extend_schema(
        summary="Create an API token; its secret is answered this once",
        request=ApiTokenCreateSerializer,
        responses={201: NewApiTokenSerializer},
    ),
    destroy=extend_schema(
        summary="Revoke an API token",
        responses={204: OpenApiResponse(description="Revoked: it no longer authenticates")},
    ),
)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    queryset = ApiToken.objects.none()  # for the schema; requests use get_queryset()
    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return selectors.api_token_list(user=self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = services.api_token_create(user=request.user, **serializer.validated_data)
        return token_response(token, secret, status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.api_token_revoke(token=instance)
