"""How outbox rows leave the process: to the Dapr sidecar, or in-process to the dispatcher.

Both hand the same CloudEvent envelopes to the same handlers; only the transport differs.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

import orjson
from django.conf import settings

from . import dapr
from .cloudevents import CONTENT_TYPE, build_envelope
from .runtime import runtime

logger = logging.getLogger(__name__)


class Answer(StrEnum):
    """What one publish attempt came to, and so what the relay does with the row."""

    DELIVERED = "delivered"
    TRANSIENT = "transient"  # retried with backoff: the sidecar or the broker may do better later
    CONFIGURATION = "configuration"  # retried with backoff, logged as ERROR, /readyz not ready
    REJECTED = "rejected"  # parked: daprd refused the event itself, a retry cannot succeed
    LEASE_LOST = "lease lost"  # not sent: the row's lease ran out and another relay has it
    DEAD_LETTERED = "dead-lettered"  # in-process: dropped (see Dead letters); done, as delivered


@dataclass(frozen=True)
class Outcome:
    answer: Answer
    error: str = ""
    hint: str = ""  # the likely cause, for the operator

    @property
    def delivered(self) -> bool:
        return self.answer is Answer.DELIVERED


DELIVERED = Outcome(Answer.DELIVERED)
LEASE_LOST = Outcome(Answer.LEASE_LOST)

#: daprd's publish answers that concern the event itself (dapr/dapr, pkg/api/errors/pubsub.go).
#: Only these park a row; every other failure is retried.
CONTENT_ERRORS = {
    (400, "ERR_PUBSUB_EVENTS_SER"),  # the envelope or a bulk entry cannot be (un)marshalled
    (400, "ERR_PUBSUB_REQUEST_METADATA"),  # metadata it cannot read
    (500, "ERR_PUBSUB_CLOUD_EVENTS_SER"),  # a CloudEvent body it cannot parse
}
TOKEN_HINT = (
    "check DAPR_API_TOKEN: it must be the token the sidecar expects (dapr.io/api-token-secret)"
)
SCOPES_HINT = (
    "check the pub/sub component's scopes: this app id may not publish to this topic"
    " (publishingScopes, allowedTopics)"
)
COMPONENT_HINT = (
    "the pub/sub component is not loaded (yet): check DAPR_PUBSUB_NAME and the component's scopes"
)


def classify(exc: dapr.DaprError) -> Outcome:
    """Read a failed publish as daprd means it, by status and ``errorCode``.

    401 (token) and 403 (scopes) are configuration errors; a content error parks the event;
    everything else (unreachable, timeout, 404 or 400 while the component loads, 5xx) is
    transient. Nothing but the event's own content ever parks it.
    """
    error = str(exc)
    if exc.status == 401:
        return Outcome(Answer.CONFIGURATION, error, TOKEN_HINT)
    if exc.status == 403:
        return Outcome(Answer.CONFIGURATION, error, SCOPES_HINT)
    if (exc.status, exc.error_code) in CONTENT_ERRORS:
        return Outcome(Answer.REJECTED, error)
    if exc.error_code in ("ERR_PUBSUB_NOT_FOUND", "ERR_PUBSUB_NOT_CONFIGURED"):
        return Outcome(Answer.TRANSIENT, error, COMPONENT_HINT)
    return Outcome(Answer.TRANSIENT, error)


def _failed_entries(body) -> dict[str, str]:
    """entryId -> error of a bulk partial failure (``failedEntries``), else empty."""
    entries = body.get("failedEntries") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return {}
    return {
        str(entry.get("entryId")): str(entry.get("error") or "")
        for entry in entries
        if isinstance(entry, dict)
    }


def encode(value) -> bytes:
    """``value`` as JSON bytes (orjson; the standard library for an integer beyond 64 bits,
    which a dead-lettered CloudEvent kept as delivered may hold)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


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
            mine = []
            for row in topic_rows:
                if still_mine(row):
                    mine.append(row)
                else:
                    outcomes[row.seq] = LEASE_LOST
            if settings.DAPR_BULK_PUBLISH and len(mine) > 1:
                outcomes.update(self._publish_bulk(topic, mine, still_mine))
            else:
                outcomes.update(self._publish_each(mine, still_mine))
        return outcomes

    def _publish_each(self, rows, still_mine) -> dict[int, Outcome]:
        return {row.seq: self._publish_one(row) if still_mine(row) else LEASE_LOST for row in rows}

    def _publish_one(self, row) -> Outcome:
        path = f"/v1.0/publish/{settings.DAPR_PUBSUB_NAME}/{row.topic}"
        try:
            dapr.request(
                "POST",
                path,
                params={"metadata.partitionKey": row.partition_key},
                data=encode(build_envelope(row)),
                headers={"Content-Type": CONTENT_TYPE},
            )
        except dapr.DaprError as exc:
            return classify(exc)
        return DELIVERED

    def _publish_bulk(self, topic: str, rows, still_mine) -> dict[int, Outcome]:
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
            dapr.request(
                "POST", path, data=encode(entries), headers={"Content-Type": "application/json"}
            )
        except dapr.DaprError as exc:
            outcome = classify(exc)
            if outcome.answer is Answer.REJECTED:
                # daprd does not say which event it refused: send them one by one, so only
                # the bad one is parked.
                return self._publish_each(rows, still_mine)
            failed = _failed_entries(exc.body)
            if outcome.answer is Answer.TRANSIENT and failed:
                # A partial failure: the entries not listed were published.
                return {
                    row.seq: (
                        Outcome(
                            Answer.TRANSIENT,
                            f"bulk entry failed ({exc.status}): {failed[str(row.id)]}",
                        )
                        if str(row.id) in failed
                        else DELIVERED
                    )
                    for row in rows
                }
            return {row.seq: outcome for row in rows}
        return {row.seq: DELIVERED for row in rows}


class InProcessTransport:
    """The embedded default: the envelope goes straight to the subscription dispatcher.

    The dispatcher's answer is read as daprd reads it: SUCCESS is delivered (a consumer's
    failure is held and retried by the failure policy, not by the relay), a DROP (malformed,
    or a dead letter) is done, and a RETRY (a failure the database could not even record)
    is retried with the relay's backoff.
    """

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
                outcomes[row.seq] = Outcome(
                    Answer.TRANSIENT, "a consumer failed and its failure could not be recorded"
                )
            elif status == DeliveryStatus.DROP:
                outcomes[row.seq] = Outcome(
                    Answer.DEAD_LETTERED,
                    "dropped: malformed, or a consumer can never process it (see Dead letters)",
                )
            else:
                outcomes[row.seq] = DELIVERED
        return outcomes


def get_transport() -> DaprTransport | InProcessTransport:
    """The transport of this process's runtime (``events.runtime``)."""
    return runtime().transport
