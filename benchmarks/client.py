"""Requests as a WSGI server makes them: Django's ``WSGIHandler`` called with a real environ.

Not ``django.test.Client``, which records templates and signals for assertions and skips the
request-started/finished handling a server does (connection age checks, closing).
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import orjson


@dataclass
class Response:
    status: int
    body: bytes

    def json(self):
        return orjson.loads(self.body)


class WsgiClient:
    def __init__(self, token: str, host: str = "127.0.0.1") -> None:
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()
        self.token = token
        self.host = host

    def environ(self, method: str, path: str, body: bytes = b"") -> dict:
        path, _, query = path.partition("?")
        return {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": self.host,
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": f"{self.host}:8000",
            "HTTP_ACCEPT": "application/json",
            "HTTP_AUTHORIZATION": f"Token {self.token}",
            "CONTENT_TYPE": "application/json" if body else "",
            "CONTENT_LENGTH": str(len(body)) if body else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }

    def request(self, method: str, path: str, body: bytes = b"", expect: int = 200) -> Response:
        status: list[str] = []

        def start_response(line, headers, exc_info=None):
            status.append(line)

        chunks = self.handler(self.environ(method, path, body), start_response)
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # request_finished: what a server does after each response
        code = int(status[0].split()[0])
        if code != expect:
            raise AssertionError(f"{method} {path}: {code} (expected {expect}): {content[:500]!r}")
        return Response(code, content)

    def get(self, path: str, expect: int = 200) -> Response:
        return self.request("GET", path, expect=expect)

    def post(self, path: str, data=None, expect: int = 200) -> Response:
        body = orjson.dumps(data) if data is not None else b""
        return self.request("POST", path, body, expect=expect)
