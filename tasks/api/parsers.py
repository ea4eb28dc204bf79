"""The API's JSON parser: bounded nesting, and only strings that can be written back out."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

#: The deepest nesting of arrays and objects a request body may have (tasks need 2).
MAX_JSON_DEPTH = 32

TOO_DEEP_MESSAGE = f"JSON parse error - arrays and objects nested deeper than {MAX_JSON_DEPTH}."

#: A code point of a UTF-16 surrogate: ``"\\ud800"`` alone decodes to one, which no UTF-8
#: encoder (so no renderer echoing it in an error) accepts.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate_message(where: str) -> str:
    return f"JSON parse error - {where} holds a lone surrogate (\\ud800-\\udfff), not a character."


def check_json_value(value: Any) -> None:
    """``ParseError`` when ``value`` nests deeper than MAX_JSON_DEPTH or has a string (a key
    or a value) with a lone surrogate; iterative, so any depth is checked without recursion."""
    pending: list[tuple[Any, int, str]] = [(value, 0, "$")]
    while pending:
        item, depth, path = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise ParseError(_surrogate_message(f"the string at {path}"))
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise ParseError(TOO_DEEP_MESSAGE)
        if isinstance(item, list):
            pending.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
            continue
        for key, child in item.items():
            if _SURROGATE.search(key):
                raise ParseError(_surrogate_message(f"a key of the object at {path}"))
            pending.append((child, depth + 1, f"{path}.{key}"))


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a 400 for a body nested too deep or holding a lone surrogate
    (both were 500s: a RecursionError, and a UnicodeEncodeError rendering the error)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP_MESSAGE) from None
        check_json_value(data)
        return data
