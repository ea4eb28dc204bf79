"""Safe retries: writes answered from inside their transaction, and ``Idempotency-Key``.

``AtomicWriteMixin`` runs each unsafe request of a view (``POST``, ``PUT``, ``PATCH``,
``DELETE``) in one transaction, the response included: what the client is told was read
before ``COMMIT``, so nothing after it can turn a committed write into an error. A request
that fails (an exception, or any answer of 400 or more) writes nothing.

A ``POST`` sent with ``Idempotency-Key: <key>`` (draft-ietf-httpapi-idempotency-key-header;
1 to 255 printable ASCII characters, optionally quoted) is answered once per user and key:
its status and body are stored in the request's transaction (``IdempotencyKey``), so they
commit with the write or not at all, and a retry gets them back with ``Idempotent-Replayed: true``
instead of writing again. The row is claimed by inserting it first, under the unique
(user, key) constraint: a concurrent duplicate waits for the first to finish and then
replays it (after ``IN_FLIGHT_WAIT_MS`` on PostgreSQL: 409). The same key with another
method, path or body is a 422; one older than ``IDEMPOTENCY_KEY_TTL`` is new again, and the
``purge-idempotency-keys`` periodic work (``events.runtime.SCHEDULE``) deletes it. Failed
requests store nothing, so a corrected retry may reuse the key. Token-creating views do not
use this: their answer holds a secret that is stored only as a digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.permissions import SAFE_METHODS
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
#: How long a retry waits for the first request with its key to finish (PostgreSQL; SQLite
#: runs one writer at a time), before the 409.
IN_FLIGHT_WAIT_MS = 2000
_LOCK_NOT_AVAILABLE = "55P03"


class _KeyProblem(exceptions.APIException):
    """Answered as ``{"detail": ..., "code": ...}``, like the database's 503."""

    def __init__(self) -> None:
        super().__init__({"detail": self.default_detail, "code": self.default_code})


class IdempotencyKeyReused(_KeyProblem):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = (
        f"This {HEADER} was used for another request (method, path or body): "
        "send a new key for a new request."
    )


class IdempotencyKeyInFlight(_KeyProblem):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_flight"
    default_detail = f"A request with this {HEADER} is still being processed: retry shortly."


class _Replay(Exception):
    """The stored answer to give instead of running the view again."""

    def __init__(self, record: IdempotencyKey) -> None:
        super().__init__(record.key)
        self.response = Response(
            record.response_body,
            status=record.response_status,
            headers={REPLAYED_HEADER: "true"},
        )


def request_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key`` (None without one); a malformed one is a 400."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw  # an sf-string
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        raise exceptions.ValidationError(
            {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."]}
        )
    return key


@contextmanager
def _bounded_wait() -> Iterator[None]:
    """On PostgreSQL, wait at most ``IN_FLIGHT_WAIT_MS`` for a lock, then restore the wait."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
            [f"{IN_FLIGHT_WAIT_MS}ms"],
        )
        (previous, _) = cursor.fetchone()
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


def claim(request: Request) -> IdempotencyKey | None:
    """Claim the request's key for this request (None: no key), inside its transaction.

    Raises ``_Replay`` when the key already answered the same request, and the 422 or 409
    errors. Never checks then inserts: the insert comes first and the unique constraint
    decides; a row in the way is then read locked.
    """
    key = request_key(request)
    if key is None:
        return None
    fingerprint = {
        "request_method": request.method,
        "request_path": request.get_full_path(),
        "request_digest": hashlib.sha256(request.body).hexdigest(),
    }
    now = timezone.now()
    try:
        with _bounded_wait(), transaction.atomic():  # a savepoint: a timeout undoes only this
            record, created = _insert_or_lock(request.user, key, fingerprint, now)
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise IdempotencyKeyInFlight from exc
        raise
    if created:
        return record
    if record.created_at <= now - settings.IDEMPOTENCY_KEY_TTL:  # expired: the key is new
        for name, value in fingerprint.items():
            setattr(record, name, value)
        record.created_at, record.response_status, record.response_body = now, None, None
        record.save()
        return record
    if any(getattr(record, name) != value for name, value in fingerprint.items()):
        raise IdempotencyKeyReused
    raise _Replay(record)


def _insert_or_lock(user, key: str, fingerprint: dict, now) -> tuple[IdempotencyKey, bool]:
    """The new row, or the one in the way, locked; (row, created)."""
    for _ in range(2):  # twice: the row in the way may be purged before it is read
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    user=user, key=key, created_at=now, **fingerprint
                ), True
        except IntegrityError:
            pass
        record = IdempotencyKey.objects.select_for_update().filter(user=user, key=key).first()
        if record is not None:
            return record, False
    raise IdempotencyKeyInFlight


def remember(record: IdempotencyKey, response: Response) -> None:
    """Store the answer with the claimed key, as the client receives it (JSON)."""
    body = JSONRenderer().render(response.data)
    record.response_status = response.status_code
    record.response_body = json.loads(body) if body else None
    record.save(update_fields=["response_status", "response_body"])


def purge_expired() -> int:
    """The periodic ``purge-idempotency-keys`` (``events.runtime.SCHEDULE``): delete the keys
    older than ``IDEMPOTENCY_KEY_TTL``; returns how many."""
    cutoff = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyKey.objects.filter(created_at__lte=cutoff).delete()
    return deleted


class AtomicWriteMixin:
    """For DRF views: unsafe requests in one transaction with their response, and
    ``Idempotency-Key`` on ``POST`` (see the module's docstring)."""

    _idempotency_record: IdempotencyKey | None = None

    def dispatch(self, request, *args, **kwargs):
        if request.method in SAFE_METHODS:
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            response = super().dispatch(request, *args, **kwargs)
            if response.status_code >= 400:
                transaction.set_rollback(True)
            elif self._idempotency_record is not None:
                remember(self._idempotency_record, response)
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticated, permitted, not throttled
        if request.method == "POST":
            self._idempotency_record = claim(request)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)
