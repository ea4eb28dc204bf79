"""``/api/schema/``, generated once per process.

drf-spectacular's generator is not thread-safe (tfranzel/drf-spectacular#1122, #1123, #1368):
under gunicorn's threads, concurrent first requests failed with ``AttributeError: 'NoneType'
object has no attribute 'startswith'``. The library has no caching of its own, and a response
cache would not help (concurrent misses still generate together), so the schema is generated
under a lock and kept per language; a settings change (tests) forgets it.
"""

from __future__ import annotations

import inspect
import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import translation
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

from .serializers import StrictFieldsMixin

_lock = threading.Lock()
_schemas: dict[str, dict] = {}


class SchemaView(SpectacularAPIView):
    """SpectacularAPIView, one generation at a time, kept per supported language."""

    def _get_schema_response(self, request) -> Response:
        language = schema_language()
        with _lock:
            if language not in _schemas:
                generator = self.generator_class(urlconf=self.urlconf, api_version=self.api_version)
                with translation.override(language):
                    _schemas[language] = generator.get_schema(
                        request=request, public=self.serve_public
                    )
            return Response(_schemas[language])


def schema_language() -> str:
    """The active language as one of ``LANGUAGES`` (as LocaleMiddleware would pick it), else
    ``LANGUAGE_CODE``'s: ``?lang=`` takes any string, the cache only these few keys."""
    try:
        return translation.get_supported_language_variant(translation.get_language())
    except LookupError:
        return translation.get_supported_language_variant(settings.LANGUAGE_CODE)


@receiver(setting_changed)
def forget_schemas(**kwargs) -> None:
    """Drop the kept schemas (on any settings change)."""
    with _lock:
        _schemas.clear()


class StrictFieldsExtension(OpenApiSerializerExtension):
    """A request body whose serializer refuses unknown fields (``StrictFieldsMixin``) is
    documented with ``additionalProperties: false``."""

    target_class = StrictFieldsMixin
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        # The mixin's docstring, inherited by serializers without their own, is not theirs.
        if schema.get("description") == inspect.cleandoc(StrictFieldsMixin.__doc__ or ""):
            del schema["description"]
        return schema


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_response(description: str, schema: str, headers: dict | None = None) -> dict:
    response = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = headers
    return response


#: The bodies of the API's error answers (DRF's, through ``tasks.api.exceptions``).
ERROR_SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "An error that is not about one field.",
        "properties": {
            "detail": {"type": "string", "description": "What went wrong, in words."},
            "code": {
                "type": "string",
                "description": "On some errors, a stable name for it, e.g. database_unavailable.",
            },
        },
        "required": ["detail"],
        "additionalProperties": False,
    },
    "ErrorMessages": {
        "description": "The messages about one field: a list, or for a list or object field, "
        'the messages of each item by index or key ({"0": ["..."]}).',
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": _ref("ErrorMessages")},
        ],
    },
    "ValidationError": {
        "type": "object",
        "description": 'Each invalid field with its messages: {"title": ["This field is '
        'required."]}; `non_field_errors` for the input as a whole, an unknown field by its '
        'own name ("Unknown field."). A body that is not valid JSON, or too deeply nested: '
        '{"detail": "JSON parse error - ..."}.',
        "properties": {"detail": {"type": "string"}},
        "additionalProperties": _ref("ErrorMessages"),
    },
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def _error_responses() -> dict[str, dict]:
    max_body = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {
        "400": _error_response("Invalid input: each field with its messages.", "ValidationError"),
        "401": _error_response(
            "No credentials, or a token that is wrong, revoked or expired "
            "(`WWW-Authenticate: Token`).",
            "Error",
        ),
        "404": _error_response(
            "Not found: no such object among yours (another user's is not found either), "
            "or a page number past the last page.",
            "Error",
        ),
        "413": _error_response(f"The request body is larger than {max_body} bytes.", "Error"),
        "409": _error_response(
            "A request with this Idempotency-Key is still running: retry shortly.", "Error"
        ),
        "422": _error_response(
            "This Idempotency-Key was used for another request (method, path or body).",
            "Error",
        ),
        "429": _error_response(
            "Too many requests (throttled, or too many failed logins): wait `Retry-After` seconds.",
            "Error",
            headers=RETRY_AFTER,
        ),
        "503": _error_response(
            "The database cannot be reached: try again after `Retry-After` seconds.",
            "Error",
            headers=RETRY_AFTER,
        ),
    }


def add_error_responses(result: dict, generator, request, public) -> dict:
    """POSTPROCESSING_HOOKS: document each operation's error answers, with their bodies.

    400 where there is input (a body, query or header parameters), 401 where credentials are
    required, 404 on an object's routes and on paginated lists (a page past the last), 413
    where there is a body, 409/422 where an Idempotency-Key is taken, and 429 (every API
    view is throttled) and 503 (the database out of reach) everywhere.
    """
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(ERROR_SCHEMAS)
    errors = _error_responses()
    components.setdefault("responses", {}).update(
        {_RESPONSE_NAMES[status]: response for status, response in errors.items()}
    )
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            parameters = operation.get("parameters", [])
            for parameter in parameters:
                # An empty query parameter is no filter, or the default (page 1, 5 occurrences);
                # only an empty page_size is refused.
                if parameter["in"] == "query" and parameter["name"] != "page_size":
                    parameter["allowEmptyValue"] = True
            statuses = {"429", "503"}
            if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters):
                statuses |= {"409", "422"}
            if "requestBody" in operation:
                statuses |= {"400", "413"}
            if any(p["in"] in ("query", "header") for p in parameters):
                statuses.add("400")
            security = operation.get("security")
            if security and {} not in security:
                statuses.add("401")
            if "{" in path or any(p["name"] == "page" for p in parameters):
                statuses.add("404")
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                described = responses.get(status, {}).get("description")
                responses[status] = {"$ref": f"#/components/responses/{_RESPONSE_NAMES[status]}"}
                if described and described != errors[status]["description"]:
                    responses[status] = {**errors[status], "description": described}
    return result


_METHODS = {"get", "put", "patch", "post", "delete"}
_RESPONSE_NAMES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "404": "NotFound",
    "409": "IdempotencyConflict",
    "413": "ContentTooLarge",
    "422": "IdempotencyKeyReused",
    "429": "TooManyRequests",
    "503": "ServiceUnavailable",
}
