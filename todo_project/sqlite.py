"""Unicode-aware case folding for SQLite, so the embedded default behaves like PostgreSQL.

SQLite's built-in LOWER() and LIKE fold ASCII letters only: without this, "École" and
"école" would be two different tags, and ``search=ÉCOLE`` would miss "école". Each new
SQLite connection gets LOWER() and LIKE replaced by Python functions that fold Unicode.
"""

from __future__ import annotations

import functools
import re


def unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


@functools.lru_cache(maxsize=512)
def _like_regex(pattern: str, escape: str | None) -> re.Pattern[str]:
    parts = []
    chars = iter(pattern.casefold())
    for char in chars:
        if escape and char == escape:
            parts.append(re.escape(next(chars, "")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def unicode_like(pattern, value, escape=None):
    """SQLite's ``value LIKE pattern [ESCAPE escape]``, case-insensitive beyond ASCII."""
    if pattern is None or value is None:
        return None
    return _like_regex(str(pattern), escape).fullmatch(str(value).casefold()) is not None


def install_unicode_functions(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_function("LOWER", 1, unicode_lower, deterministic=True)
    raw.create_function("LIKE", 2, unicode_like, deterministic=True)
    raw.create_function("LIKE", 3, unicode_like, deterministic=True)
