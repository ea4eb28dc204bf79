"""State store client: Dapr's state HTTP API, or the embedded database-backed equivalent.

Both keep infrastructure state only (last poll time, idempotency mirrors with a TTL); the
application database stays the authority on what happened.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import dapr
from .models import StateEntry
from .runtime import runtime

MAX_KEY_LENGTH = 255


class InvalidStateKey(ValueError):
    pass


class StateConflict(Exception):
    """An etag did not match, or a first-write found the key already written."""


@dataclass(frozen=True)
class StateItem:
    key: str
    value: Any
    etag: str


@dataclass(frozen=True)
class StateOperation:
    operation: str  # "upsert" | "delete"
    key: str
    value: Any = None
    etag: str | None = None
    ttl_seconds: int | None = None


def validate_key(key: str) -> str:
    """Keys are ``namespace:identifier``, at most 255 characters, never ``dapr:...``."""
    if not isinstance(key, str) or not key:
        raise InvalidStateKey("A state key must be a non-empty string.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidStateKey(f"State key is longer than {MAX_KEY_LENGTH} characters.")
    namespace, sep, identifier = key.partition(":")
    if not sep or not namespace or not identifier:
        raise InvalidStateKey(f"State key {key!r} must look like 'namespace:identifier'.")
    if namespace.lower() == "dapr":
        raise InvalidStateKey("The 'dapr:' namespace is reserved.")
    if "||" in key:
        raise InvalidStateKey("State keys may not contain '||' (Dapr's key separator).")
    return key


class StateStore(Protocol):
    def get(self, key: str) -> StateItem | None: ...

    def save(
        self,
        key: str,
        value: Any,
        *,
        etag: str | None = None,
        first_write: bool = False,
        ttl_seconds: int | None = None,
    ) -> None: ...

    def delete(self, key: str, *, etag: str | None = None) -> None: ...

    def transaction(self, operations: list[StateOperation]) -> None: ...


def _save_request(op: StateOperation, *, first_write: bool = False) -> dict[str, Any]:
    request: dict[str, Any] = {"key": op.key, "value": op.value}
    if op.etag is not None:
        request["etag"] = op.etag
    if op.etag is not None or first_write:
        request["options"] = {"concurrency": "first-write", "consistency": "strong"}
    if op.ttl_seconds is not None:
        request["metadata"] = {"ttlInSeconds": str(int(op.ttl_seconds))}
    return request


class DaprStateStore:
    """``/v1.0/state/{store}`` on the sidecar."""

    def __init__(self, store_name: str | None = None):
        self.store = store_name or settings.DAPR_STATESTORE_NAME

    def _conflict_or_raise(self, exc: dapr.DaprError, key: str, first_write: bool = False):
        # 409 on an etag mismatch; the PostgreSQL store answers 500 to a first-write clash.
        first_write_clash = first_write and exc.status == 500 and "ERR_STATE_SAVE" in str(exc.body)
        if exc.status == 409 or first_write_clash:
            raise StateConflict(f"state key {key!r} was changed concurrently") from exc
        raise exc

    def _key_path(self, key: str) -> str:
        # Quoted: a key may hold characters that mean something in a URL ("?", "#", "%").
        return f"/v1.0/state/{self.store}/{quote(key, safe='')}"

    def get(self, key: str) -> StateItem | None:
        validate_key(key)
        response = dapr.request("GET", self._key_path(key))
        if response.status_code == 204 or not response.content:
            return None
        return StateItem(key=key, value=response.json(), etag=response.headers.get("ETag", ""))

    def save(self, key, value, *, etag=None, first_write=False, ttl_seconds=None) -> None:
        validate_key(key)
        op = StateOperation("upsert", key, value, etag, ttl_seconds)
        try:
            dapr.request(
                "POST",
                f"/v1.0/state/{self.store}",
                json=[_save_request(op, first_write=first_write)],
            )
        except dapr.DaprError as exc:
            self._conflict_or_raise(exc, key, first_write=first_write or etag is not None)

    def delete(self, key: str, *, etag: str | None = None) -> None:
        validate_key(key)
        headers = {"If-Match": etag} if etag else {}
        try:
            dapr.request("DELETE", self._key_path(key), headers=headers)
        except dapr.DaprError as exc:
            self._conflict_or_raise(exc, key)

    def transaction(self, operations: list[StateOperation]) -> None:
        body = {"operations": []}
        for op in operations:
            validate_key(op.key)
            if op.operation == "delete":
                request = {"key": op.key, **({"etag": op.etag} if op.etag else {})}
            else:
                request = _save_request(op)
            body["operations"].append({"operation": op.operation, "request": request})
        try:
            dapr.request("POST", f"/v1.0/state/{self.store}/transaction", json=body)
        except dapr.DaprError as exc:
            # daprd answers every failed transaction with 500 ERR_STATE_TRANSACTION, an etag
            # mismatch included, without saying which: one with etags is read as a conflict
            # (the caller reads again and retries); any other failure is raised as it is.
            conditional = any(op.etag for op in operations)
            if conditional and exc.status == 500 and exc.error_code == "ERR_STATE_TRANSACTION":
                raise StateConflict("the transaction's etags no longer match") from exc
            raise


class DatabaseStateStore:
    """The embedded default: the same interface over the ``StateEntry`` table."""

    def _live(self, key: str) -> StateEntry | None:
        entry = StateEntry.objects.filter(key=key).first()
        if entry and entry.expires_at and entry.expires_at <= timezone.now():
            return None
        return entry

    def get(self, key: str) -> StateItem | None:
        validate_key(key)
        entry = self._live(key)
        return StateItem(key=key, value=entry.value, etag=entry.etag) if entry else None

    def _apply(self, op: StateOperation, *, first_write: bool = False) -> None:
        now = timezone.now()
        current = StateEntry.objects.select_for_update().filter(key=op.key).first()
        if current and current.expires_at and current.expires_at <= now:
            current.delete()
            current = None
        if op.etag is not None and (current is None or current.etag != op.etag):
            raise StateConflict(f"etag mismatch for {op.key!r}")
        if op.operation == "delete":
            if current:
                current.delete()
            return
        if first_write and op.etag is None and current is not None:
            raise StateConflict(f"{op.key!r} already exists (first-write)")
        # Like Dapr: a positive TTL expires the entry, 0 or -1 means it never expires.
        ttl = op.ttl_seconds or 0
        expires = now + dt.timedelta(seconds=ttl) if ttl > 0 else None
        new_etag = uuid.uuid4().hex
        if current is None:
            try:
                with transaction.atomic():
                    StateEntry.objects.create(
                        key=op.key, value=op.value, etag=new_etag, expires_at=expires
                    )
            except IntegrityError as exc:
                if first_write or op.etag is not None:
                    raise StateConflict(f"{op.key!r} was written concurrently") from exc
                StateEntry.objects.filter(key=op.key).update(
                    value=op.value, etag=new_etag, expires_at=expires
                )
        else:
            StateEntry.objects.filter(key=op.key).update(
                value=op.value, etag=new_etag, expires_at=expires, updated_at=now
            )

    def save(self, key, value, *, etag=None, first_write=False, ttl_seconds=None) -> None:
        validate_key(key)
        with transaction.atomic():
            self._apply(
                StateOperation("upsert", key, value, etag, ttl_seconds), first_write=first_write
            )

    def delete(self, key: str, *, etag: str | None = None) -> None:
        validate_key(key)
        with transaction.atomic():
            self._apply(StateOperation("delete", key, etag=etag))

    def transaction(self, operations: list[StateOperation]) -> None:
        for op in operations:
            validate_key(op.key)
        with transaction.atomic():
            for op in operations:
                self._apply(op)

    def purge_expired(self) -> int:
        deleted, _ = StateEntry.objects.filter(expires_at__lte=timezone.now()).delete()
        return deleted


def state_store() -> StateStore:
    """The state store of this process's runtime (``events.runtime``)."""
    return runtime().state


def purge_expired_state() -> int:
    """The embedded scheduler's ``purge-expired-state`` (``events.runtime.SCHEDULE``)."""
    return DatabaseStateStore().purge_expired()
