"""In-process MCP calls: the SDK's own client connected to ``tasks.mcp.server`` in this
process, acting for a user, on the test database (its thread-sensitive calls run on this
thread, inside the test's transaction)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import pytest
from asgiref.sync import async_to_sync
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from mcp import Client
from mcp.types import CallToolResult, ReadResourceResult

from tasks.mcp.server import acting_as, mcp_server


@contextmanager
def _keeping_the_test_connection() -> Iterator[None]:
    """Each tool call is framed as a request (``request_started``): as Django's test client
    does around a request, leave the test's connection (and its transaction) open."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _as(user, work: Callable):
    async def run():
        async with Client(mcp_server) as client:
            return await work(client)

    with _keeping_the_test_connection(), acting_as(user.pk) if user else nullcontext():
        return async_to_sync(run)()


@pytest.fixture
def call() -> Callable[..., CallToolResult]:
    """``call(user, tool, **arguments)``: the tool's result for ``user`` (None: nobody)."""

    def call_tool(user, name: str, **arguments) -> CallToolResult:
        return _as(user, lambda client: client.call_tool(name, arguments))

    return call_tool


@pytest.fixture
def read() -> Callable[..., ReadResourceResult]:
    """``read(user, uri)``: the resource as ``user`` reads it."""

    def read_resource(user, uri: str) -> ReadResourceResult:
        return _as(user, lambda client: client.read_resource(uri))

    return read_resource


@pytest.fixture
def tools(alice) -> dict:
    """The tools the server lists, by name."""
    listed = _as(alice, lambda client: client.list_tools())
    return {tool.name: tool for tool in listed.tools}
