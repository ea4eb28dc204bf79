"""``/api/schema/``, generated once per process.

drf-spectacular's generator is not thread-safe (tfranzel/drf-spectacular#1122, #1123, #1368):
under gunicorn's threads, concurrent first requests failed with ``AttributeError: 'NoneType'
object has no attribute 'startswith'``. The library has no caching of its own, and a response
cache would not help (concurrent misses still generate together), so the schema is generated
under a lock and kept per language; a settings change (tests) forgets it.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import translation
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

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
