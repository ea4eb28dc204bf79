"""One HTTP POST of a delivery: to the checked address only, no redirects, short, capped.

The connection goes to the address ``safety.check_url`` allowed (the URL is rewritten to
it; the Host header, TLS SNI and certificate check keep the host name), so the address
connected to is the address checked. Proxies from the environment are ignored: a proxy
would connect on our behalf to an address never checked.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.utils import timezone
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .safety import Target, UnsafeURL, check_url

USER_AGENT = "Tideline-Webhooks/1.0"


@dataclass(frozen=True)
class Result:
    """What one attempt came to. ``retry`` says whether another attempt may succeed;
    ``retry_after`` is the receiver's ``Retry-After`` in seconds, when it gave one."""

    ok: bool
    retry: bool
    status_code: int | None = None
    duration_ms: int = 0
    excerpt: str = ""
    error: str = ""
    retry_after: float | None = None


class _DeadlineMixin:
    """A connection whose socket is shut down ``WEBHOOK_TIMEOUT_SECONDS`` after it connected:
    the read timeout alone lets a receiver that trickles its answer a byte at a time hold an
    attempt for ever."""

    _watchdog: threading.Timer | None = None

    def connect(self) -> None:
        super().connect()
        self._watchdog = threading.Timer(settings.WEBHOOK_TIMEOUT_SECONDS, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        super().close()


class _DeadlineHTTPConnection(_DeadlineMixin, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineMixin, HTTPSConnection):
    pass


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class PinnedHostAdapter(HTTPAdapter):
    """HTTPS to an address while SNI and the certificate check use the host name; every
    connection with a deadline."""

    def __init__(self, host: str) -> None:
        self._host = host
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs) -> None:
        # urllib3 drops these TLS keywords for plain http:// pools.
        pool_kwargs.update(server_hostname=self._host, assert_hostname=self._host)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _DeadlineHTTPPool,
            "https": _DeadlineHTTPSPool,
        }


def pinned_url(target: Target) -> str:
    """The URL with the checked address in place of the host name (no fragment)."""
    parts = urlsplit(target.url)
    host = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    return urlunsplit((target.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))


def host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = target.host
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return host if target.port == default else f"{host}:{target.port}"


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - timezone.now()).total_seconds(), 0.0)


def read_capped(response: requests.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; the rest is never read (the connection closes)."""
    body = b""
    for chunk in response.iter_content(chunk_size=min(limit, 8192) or 1):
        body += chunk
        if len(body) >= limit:
            break
    return body[:limit]


def post(url: str, body: bytes, headers: dict[str, str]) -> Result:
    """POST ``body`` to ``url`` once; every failure becomes a ``Result`` (never raises)."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = check_url(url)
    except UnsafeURL as exc:
        return Result(ok=False, retry=False, error=str(exc)[:500], duration_ms=took())
    session = requests.Session()
    session.trust_env = False  # no proxies, no .netrc
    session.verify = settings.WEBHOOK_CA_BUNDLE or True
    session.mount(f"{target.scheme}://", PinnedHostAdapter(target.host))
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        with session.post(
            pinned_url(target),
            data=body,
            headers={**headers, "Host": host_header(target), "User-Agent": USER_AGENT},
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            excerpt = read_capped(response, settings.WEBHOOK_RESPONSE_MAX_BYTES)
            code = response.status_code
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
    except requests.Timeout as exc:
        return Result(ok=False, retry=True, error=f"timed out: {exc}"[:500], duration_ms=took())
    except requests.RequestException as exc:
        if took() >= timeout * 1000:  # the deadline shut the connection down
            error = f"timed out: no whole answer within {timeout:g} s of connecting"
        else:
            error = f"connection failed: {exc}"
        return Result(ok=False, retry=True, error=error[:500], duration_ms=took())
    finally:
        session.close()
    text = excerpt.decode("utf-8", errors="replace")
    common = {"status_code": code, "duration_ms": took(), "excerpt": text}
    if 200 <= code < 300:
        return Result(ok=True, retry=False, **common)
    if 300 <= code < 400:
        location = response.headers.get("Location", "")
        error = f"HTTP {code}: redirects are not followed (Location: {location})"
        return Result(ok=False, retry=False, error=error[:500], **common)
    if code in (408, 429) or code >= 500:
        return Result(ok=False, retry=True, error=f"HTTP {code}", retry_after=retry_after, **common)
    return Result(ok=False, retry=False, error=f"HTTP {code}: not retried", **common)
