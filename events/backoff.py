"""The one retry schedule: exponential backoff with optional jitter, capped.

Used by the relay (outbox rows), the failure policy (consumer attempts) and reminder
e-mails, each with its own base and cap from settings.
"""

from __future__ import annotations

import datetime as dt
import random


def exponential_backoff(
    attempts: int, *, base_seconds: float, max_seconds: float, jitter: bool = True
) -> dt.timedelta:
    """The wait after the ``attempts``-th failure: ``base * 2**(attempts-1)``, at most ``max``.

    With ``jitter`` the wait is drawn from the top fifth below that figure, so retries of
    many rows that failed together spread out instead of arriving at once.
    """
    delay = min(base_seconds * (2 ** max(attempts - 1, 0)), max_seconds)
    if jitter:
        delay *= random.uniform(0.8, 1.0)
    return dt.timedelta(seconds=delay)
