"""JSON rendering through orjson, byte for byte what DRF's ``JSONRenderer`` writes."""

from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer

#: Types orjson would write in its own way (date-times) or that DRF's encoder converts
#: (dataclasses fail there too) are passed to ``default``: none, so they fall back.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONRenderer(JSONRenderer):
    """Compact JSON by orjson: the API's answers are strings, numbers, booleans, nulls,
    lists and objects, written as DRF's renderer writes them (UTF-8, no spaces, U+2028 and
    U+2029 escaped). Anything else orjson would write differently (date-times, non-string
    keys, integers beyond 64 bits) and an indented answer (``Accept: ...; indent=2``, the
    browsable API) go to DRF's renderer."""

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is None:
            try:
                rendered = orjson.dumps(data, option=_OPTIONS)
            except TypeError:  # orjson.JSONEncodeError
                pass
            else:
                if b"\xe2\x80\xa8" in rendered or b"\xe2\x80\xa9" in rendered:
                    rendered = rendered.replace(b"\xe2\x80\xa8", b"\\u2028").replace(
                        b"\xe2\x80\xa9", b"\\u2029"
                    )
                return rendered
        return super().render(data, accepted_media_type, renderer_context)
