"""``GET /live/``: the signed-in user's task changes as server-sent events (or an API token
owner's: ``Authorization: Token <secret>``, for a script).

Open pages follow it (``tideline/app.js``) and refresh their lists and counts in place. A
stream is a cursor on the user's live-updates log (``events.live``): it sends the updates
after its position, then waits to be woken by the consumer of ``task-updates`` (from any
process), with a comment every ``LIVE_HEARTBEAT_SECONDS`` that also re-reads the log. It
ends after ``LIVE_STREAM_MAX_SECONDS``, and the browser reconnects on its own.

Where to start: the ``Last-Event-ID`` header (sent by the browser on a reconnect) or else the
``after`` parameter (the page's position when it was rendered), each a CloudEvent id; or
``start`` (everything still in the log); or neither: from now. An id the log no longer holds
(or never held for this user) starts from now with a ``reset`` event: the page reloads its
lists, since it may have missed something.

Under the ASGI server (production, ``make run``) a stream costs a coroutine, not a thread;
under WSGI (``manage.py runserver``, the test server) it holds one thread while open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.http import require_GET
from rest_framework.exceptions import AuthenticationFailed

from events import background, live
from tasks.authentication import ApiTokenAuthentication

#: The browser waits this long before reconnecting after a stream ends or breaks.
RETRY_MILLISECONDS = 2000
#: At most this many updates per read of the log (a stream catching up reads again at once).
BATCH = 100
MAX_EVENT_ID_LENGTH = 255


@require_GET
def live_updates(request: HttpRequest) -> HttpResponse:
    user, refusal = _follower(request)
    if user is None:
        return JsonResponse({"detail": refusal}, status=401)
    last_event_id = request.headers.get("Last-Event-ID") or request.GET.get("after", "")
    field = "Last-Event-ID" if request.headers.get("Last-Event-ID") else "after"
    if len(last_event_id) > MAX_EVENT_ID_LENGTH or not last_event_id.isprintable():
        return JsonResponse(
            {field: [f"Not an event id (at most {MAX_EVENT_ID_LENGTH} printable characters)."]},
            status=400,
        )
    cursor = _Cursor.starting_at(user.pk, last_event_id)
    waiter = live.Waiter(user.pk)
    if not live.hub.open(waiter):
        response = JsonResponse(
            {"detail": "Too many open live pages; close some tabs and reload."}, status=429
        )
        response["Retry-After"] = "30"
        return response
    background.worker.requests.stream_opened()
    if isinstance(request, ASGIRequest):
        # The request's thread keeps its connection until the response ends, minutes from
        # now: give it back to the pool, the stream reads with connections of its own.
        connections.close_all()
        stream = _stream_async(cursor, waiter)
    else:
        stream = _stream_sync(cursor, waiter)
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a buffering proxy (nginx) would hold the events
    return response


def _follower(request: HttpRequest) -> tuple[Any, str]:
    """The signed-in user (a page's session), or the owner of an API token sent as
    ``Authorization: Token <secret>`` (a script following its changes); else why not."""
    if request.user.is_authenticated:
        return request.user, ""
    try:
        found = ApiTokenAuthentication().authenticate(request)
    except AuthenticationFailed as exc:
        return None, str(exc.detail)
    if found is None:
        return None, "Sign in, or send Authorization: Token <API token>, to follow live updates."
    return found[0], ""


class _Cursor:
    """A stream's position in the user's log and what it sends next."""

    def __init__(self, user_id: int, seq: int, event_id: str, *, announce: str = "") -> None:
        self.user_id = user_id
        self.seq = seq
        self.event_id = event_id
        self.announce = announce  # "position" or "reset": sent first, with the position's id
        self.deadline = time.monotonic() + settings.LIVE_STREAM_MAX_SECONDS

    @classmethod
    def starting_at(cls, user_id: int, last_event_id: str) -> _Cursor:
        if last_event_id == "start":
            return cls(user_id, 0, "")
        if last_event_id:
            seq = live.position_of(user_id, last_event_id)
            if seq is not None:
                return cls(user_id, seq, last_event_id)
        seq, event_id = live.current_position(user_id)
        announce = "reset" if last_event_id else "position" if event_id else ""
        return cls(user_id, seq, event_id, announce=announce)

    def prelude(self) -> str:
        """The first lines: the reconnect delay; then, for a stream that starts from now,
        the current position as an event whose id becomes the browser's last event id (so
        a reconnect resumes from here), named ``reset`` when the page's own position was
        unknown."""
        lines = f"retry: {RETRY_MILLISECONDS}\n\n"
        if self.announce:
            lines += f"id: {self.event_id}\nevent: {self.announce}\ndata: {{}}\n\n"
        return lines

    def read(self) -> str:
        """The next updates as events (empty when there are none); moves the position."""
        updates = live.updates_after(self.user_id, self.seq, limit=BATCH)
        if updates:
            self.seq, self.event_id = updates[-1].seq, updates[-1].event_id
        return live.as_sse(updates)

    def read_and_release(self) -> str:
        """``read`` from a thread of the loop's executor, giving its connection back after."""
        try:
            return self.read()
        finally:
            connections.close_all()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


#: A comment line: keeps proxies from closing an idle stream, and finds a closed one.
KEEP_ALIVE = ": keep-alive\n\n"


def _close(waiter: live.Waiter) -> None:
    live.hub.close(waiter)
    background.worker.requests.stream_closed()


def _stream_sync(cursor: _Cursor, waiter: live.Waiter) -> Iterator[str]:
    try:
        yield cursor.prelude()
        while True:
            try:
                events = cursor.read()
            except DatabaseError:
                return  # the browser reconnects after the retry delay
            if events:
                yield events
                continue
            if cursor.remaining() <= 0:
                return
            if not waiter.wait(min(settings.LIVE_HEARTBEAT_SECONDS, cursor.remaining())):
                yield KEEP_ALIVE
    finally:
        _close(waiter)


async def _stream_async(cursor: _Cursor, waiter: live.Waiter) -> AsyncIterator[str]:
    waiter.bind_loop(asyncio.get_running_loop())
    read = sync_to_async(cursor.read_and_release, thread_sensitive=False)
    try:
        yield cursor.prelude()
        while True:
            try:
                events = await read()
            except DatabaseError:
                return
            if events:
                yield events
                continue
            if cursor.remaining() <= 0:
                return
            rung = await waiter.wait_async(min(settings.LIVE_HEARTBEAT_SECONDS, cursor.remaining()))
            if not rung:
                yield KEEP_ALIVE
    finally:
        _close(waiter)


urlpatterns = [
    path("live/", live_updates, name="live-updates"),
]
