"""Read queries the ORM compiles once per thread and database, then runs with new values.

Behind every API request there is a token lookup, and behind a task's detail a read of one
row by its key. For such reads compiling the ORM query (``SQLCompiler.as_sql``: resolving
the columns, joins and lookups into SQL) costs as much as the database answering it, about
0.3 ms each at a million tasks (docs/benchmarks.md). A ``CompiledRead`` lets the ORM write
the SQL once, with a marker in place of each parameter, and later runs that SQL with the
real values: the models still decide every table, column, join and converter, and only the
recompiling is skipped. On PostgreSQL the statements bind their parameters on the server, so
that a connection that runs one often prepares it (``DATABASE_PREPARED_STATEMENTS``) and the
planning is skipped too.

The compiled query is kept per thread and per database alias (compiling changes a query for
a moment, and each thread has its own connection); rows are read through the alias's
current connection, so query counting, ``execute_wrapper`` and the outage middleware see
them as any other query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet

#: Parameter markers: values no caller passes, of the types the lookups take as they are
#: (integers and strings reach the SQL parameters unchanged).
_INT_MARKER_BASE = -(2**62)
_STR_MARKER_PREFIX = "\x00compiled-read-parameter:"


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    #: Each parameter's positions in ``params``.
    positions: dict[str, tuple[int, ...]]
    #: The keys of a row, as ``values()`` names them.
    names: tuple[str, ...]
    compiler: object
    converters: dict


class CompiledRead:
    """A ``values()`` query compiled once per thread and database.

    ``build`` takes the parameters as keyword arguments and returns the ``values()``
    queryset; ``types`` names each parameter's type (``int`` or ``str``). ``rows(**values)``
    runs the query with those values and returns what ``list(build(**values))`` would.
    ``build`` must pass each parameter to a lookup that sends it to the database unchanged
    (``pk=``, ``user_id=``, ``digest=``); a parameter the ORM turned into something else, or
    wrote into the SQL itself, is refused when the query is first compiled.
    """

    def __init__(self, build: Callable[..., QuerySet], **types: type) -> None:
        if not all(kind in (int, str) for kind in types.values()):
            raise TypeError("a CompiledRead parameter is an int or a str")
        self.build = build
        self.types = types
        self._local = threading.local()

    def _markers(self) -> dict[str, int | str]:
        return {
            name: _INT_MARKER_BASE - index if kind is int else f"{_STR_MARKER_PREFIX}{name}"
            for index, (name, kind) in enumerate(self.types.items())
        }

    def _compile(self, alias: str) -> _Compiled:
        markers = self._markers()
        queryset = self.build(**markers).using(alias)
        query = queryset.query
        if query.selected is not None:
            names = tuple(query.selected)
        else:  # extra(select=...) columns come first in a row, as in ValuesIterable
            names = (*query.extra_select, *query.values_select, *query.annotation_select)
        if not names:
            raise ValueError("a CompiledRead is built on a values() queryset")
        compiler = query.get_compiler(alias)
        sql, params = compiler.as_sql()
        positions = {
            name: tuple(i for i, param in enumerate(params) if param == marker)
            for name, marker in markers.items()
        }
        missing = [name for name, found in positions.items() if not found]
        if missing:
            raise ValueError(f"parameters not sent as SQL parameters: {', '.join(missing)}")
        fields = [column for column, _, _ in compiler.select[: compiler.col_count]]
        return _Compiled(
            sql=sql,
            params=tuple(params),
            positions=positions,
            names=names,
            compiler=compiler,
            converters=compiler.get_converters(fields),
        )

    def compiled(self, alias: str) -> _Compiled:
        by_alias = getattr(self._local, "by_alias", None)
        if by_alias is None:
            by_alias = self._local.by_alias = {}
        compiled = by_alias.get(alias)
        if compiled is None:
            compiled = by_alias[alias] = self._compile(alias)
        return compiled

    def rows(self, using: str = "default", **values: int | str) -> list[dict]:
        """The rows of ``build(**values)`` on the database ``using``."""
        compiled = self.compiled(using)
        params = list(compiled.params)
        for name, kind in self.types.items():
            value = values[name]
            if type(value) is not kind:  # exactly: a bool is no id
                raise TypeError(f"{name} must be {kind.__name__}, not {type(value).__name__}")
            for position in compiled.positions[name]:
                params[position] = value
        with _cursor(connections[using]) as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        if compiled.converters:
            fetched = compiled.compiler.apply_converters(fetched, compiled.converters)
        names = compiled.names
        return [dict(zip(names, row, strict=True)) for row in fetched]


def _cursor(connection):
    """A cursor of ``connection`` as ``connection.cursor()`` gives (execute wrappers, query
    logging, errors as Django's), binding parameters on the server on PostgreSQL: psycopg
    prepares a statement once the connection has run it ``prepare_threshold`` times (the
    client-side binding of the ORM's cursors never does)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))
