"""How outbox rows leave the process: to the Dapr sidecar, or in-process to the dispatcher.

Both hand the same CloudEvent envelopes to the same handlers; only the transport differs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings

from . import dapr
from .cloudevents import CONTENT_TYPE, build_envelope

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    permanent: bool = False
    error: str = ""
    lease_lost: bool = False  # not sent: the row's lease ran out and another relay has it


DELIVERED = Outcome(delivered=True)
LEASE_LOST = Outcome(delivered=False, lease_lost=True)


def _always_mine(row) -> bool:
    return True


class DaprTransport:
    """Publishes app-made CloudEvents through the sidecar (bulk API for several per topic)."""

    name = "dapr"

    def publish(self, rows, still_mine=_always_mine) -> dict[int, Outcome]:
        """Publish ``rows``; ``still_mine(row)`` is asked before each send (lease check)."""
        outcomes: dict[int, Outcome] = {}
        by_topic = defaultdict(list)
        for row in rows:
            by_topic[row.topic].append(row)
        for topic, topic_rows in by_topic.items():
            mine = [row for row in topic_rows if still_mine(row)]
            outcomes.update({row.seq: LEASE_LOST for row in topic_rows if row not in mine})
            if settings.DAPR_BULK_PUBLISH and len(mine) > 1:
                outcomes.update(self._publish_bulk(topic, mine))
            else:
                for row in mine:
                    outcomes[row.seq] = self._publish_one(row) if still_mine(row) else LEASE_LOST
        return outcomes

    def _publish_one(self, row) -> Outcome:
        path = f"/v1.0/publish/{settings.DAPR_PUBSUB_NAME}/{row.topic}"
        try:
            dapr.request(
                "POST",
                path,
                params={"metadata.partitionKey": row.partition_key},
                json=build_envelope(row),
                headers={"Content-Type": CONTENT_TYPE},
            )
        except dapr.DaprError as exc:
            return Outcome(delivered=False, permanent=exc.permanent, error=str(exc))
        return DELIVERED

    def _publish_bulk(self, topic: str, rows) -> dict[int, Outcome]:
        path = f"/v1.0-alpha1/publish/bulk/{settings.DAPR_PUBSUB_NAME}/{topic}"
        entries = [
            {
                "entryId": str(row.id),
                "event": build_envelope(row),
                "contentType": CONTENT_TYPE,
                "metadata": {"partitionKey": row.partition_key},
            }
            for row in rows
        ]
        try:
            dapr.request("POST", path, json=entries)
        except dapr.DaprError as exc:
            failed = {}
            if isinstance(exc.body, dict) and exc.body.get("failedEntries"):
                failed = {e.get("entryId"): e.get("error", "") for e in exc.body["failedEntries"]}
                return {
                    row.seq: (
                        Outcome(
                            delivered=False,
                            permanent=exc.permanent,  # a 4xx rejects every listed entry
                            error=f"bulk entry failed ({exc.status}): {failed[str(row.id)]}",
                        )
                        if str(row.id) in failed
                        else DELIVERED
                    )
                    for row in rows
                }
            outcome = Outcome(delivered=False, permanent=exc.permanent, error=str(exc))
            return {row.seq: outcome for row in rows}
        return {row.seq: DELIVERED for row in rows}


class InProcessTransport:
    """The embedded default: the envelope goes straight to the subscription dispatcher."""

    name = "in-process"

    def publish(self, rows, still_mine=_always_mine) -> dict[int, Outcome]:
        from .dispatch import DeliveryStatus, deliver

        outcomes = {}
        for row in rows:
            if not still_mine(row):  # a slow handler outlived the lease: not ours any more
                outcomes[row.seq] = LEASE_LOST
                continue
            status = deliver(row.topic, build_envelope(row))
            if status == DeliveryStatus.RETRY:
                outcomes[row.seq] = Outcome(delivered=False, error="a consumer asked to retry")
            else:
                outcomes[row.seq] = DELIVERED
        return outcomes


def get_transport():
    return DaprTransport() if settings.DAPR_ENABLED else InProcessTransport()
