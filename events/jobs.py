"""Job callbacks: ``POST /job/<name>`` (or the embedded scheduler) runs the routing table's
handler for that job name, when this process serves its role."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .dispatch import consumer_enabled, routing_table

if TYPE_CHECKING:
    from .routing import JobHandler


def find_job_handler(name: str) -> JobHandler | None:
    for callback in routing_table().jobs:
        if callback.matches(name) and consumer_enabled(callback.role):
            return callback.handler
    return None
