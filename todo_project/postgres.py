"""Timestamps read from PostgreSQL, parsed by psycopg's C loader.

Django attaches its time zone to every ``timestamptz`` it reads with a subclass of psycopg's
pure-Python loader, so each value is parsed in Python: about 3.8 µs, against 0.2 µs for
psycopg's C loader, which Django's subclass bypasses. A page of 50 tasks has 400 of them.
Each new connection gets Django's loader with the parsing done by the C loader, and the
same result: the instant in the session's time zone, then given the connection's time zone
(``replace``, as Django's loader does).
"""

from __future__ import annotations

import functools

import psycopg
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.pq import Format


class CParsedTzLoader(BaseTzLoader):
    """Django's ``timestamptz`` loader, its parsing done by psycopg's optimised loader."""

    def __init__(self, oid: int, context=None) -> None:
        super().__init__(oid, context)
        self._parse = psycopg.adapters.get_loader(oid, Format.TEXT)(oid, context).load

    def load(self, data):
        return self._parse(data).replace(tzinfo=self.timezone)


@functools.cache
def _loader_for(timezone) -> type[CParsedTzLoader]:
    # A class per zone, as django.db.backends.postgresql.psycopg_any.register_tzloader makes:
    # Django reads the loader class's ``timezone`` to decide whether a cursor needs another.
    return type("CParsedTzLoader", (CParsedTzLoader,), {"timezone": timezone})


def install_c_timestamp_parser(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver; nothing to do without psycopg's C implementation."""
    if connection.vendor != "postgresql" or psycopg.pq.__impl__ == "python":
        return
    loader = _loader_for(connection.timezone)
    connection.connection.adapters.register_loader("timestamptz", loader)
