"""Job callbacks: handlers registered by job-name pattern, called for ``POST /job/<name>``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

JobHandler = Callable[[str, dict[str, Any]], None]

_job_handlers: list[tuple[re.Pattern[str], str, JobHandler]] = []


def job_handler(pattern: str, *, consumer: str) -> Callable[[JobHandler], JobHandler]:
    """Register a handler for job names matching ``pattern`` (a full-match regex)."""

    def register(handler: JobHandler) -> JobHandler:
        entry = (re.compile(pattern), consumer, handler)
        if not any(p.pattern == pattern and h is handler for p, _, h in _job_handlers):
            _job_handlers.append(entry)
        return handler

    return register


def find_job_handler(name: str) -> JobHandler | None:
    from .dispatch import consumer_enabled

    for pattern, consumer, handler in _job_handlers:
        if pattern.fullmatch(name) and consumer_enabled(consumer):
            return handler
    return None
