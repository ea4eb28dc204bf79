"""Read queries the ORM compiles once per thread and database, then runs with new values.

Behind every API request there is a token lookup, behind a task's detail a read of one row
by its key, and behind a page of tasks a read of their tags. For such reads compiling the
ORM query (``SQLCompiler.as_sql``: resolving the columns, joins and lookups into SQL) costs
as much as the database answering it, about 0.3 ms each at a million tasks
(docs/benchmarks.md). A ``CompiledRead`` lets the ORM write
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

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import NotSupportedError, connections
from django.db.models import Lookup, QuerySet

#: Parameter markers: values no caller passes, of the types the lookups take as they are
#: (integers, strings and lists of integers reach the SQL parameters unchanged).
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
    queryset; ``types`` names each parameter's type (``int``, ``str``, or ``list`` of ints).
    ``rows(**values)`` runs the query with those values and returns what
    ``list(build(**values))`` would. ``build`` must pass each parameter to a lookup that
    sends it to the database unchanged (``pk=``, ``user_id=``, ``digest=``; a list as one
    array with ``AnyOf``); a parameter the ORM turned into something else, or wrote into the
    SQL itself, is refused when the query is first compiled.
    """

    def __init__(self, build: Callable[..., QuerySet], **types: type) -> None:
        if not all(kind in (int, str, list) for kind in types.values()):
            raise TypeError("a CompiledRead parameter is an int, a str or a list of ints")
        self.build = build
        self.types = types
        self._local = threading.local()

    def _markers(self) -> dict[str, int | str | list[int]]:
        markers: dict[str, int | str | list[int]] = {}
        for index, (name, kind) in enumerate(self.types.items()):
            if kind is str:
                markers[name] = f"{_STR_MARKER_PREFIX}{name}"
            else:
                marker = _INT_MARKER_BASE - index
                markers[name] = [marker] if kind is list else marker
        return markers

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

    def rows(self, using: str = "default", **values: int | str | list[int]) -> list[dict]:
        """The rows of ``build(**values)`` on the database ``using``."""
        for name, kind in self.types.items():
            value = values[name]
            if type(value) is not kind:  # exactly: a bool is no id
                raise TypeError(f"{name} must be {kind.__name__}, not {type(value).__name__}")
            if kind is list and not all(type(item) is int for item in value):
                raise TypeError(f"{name} must be a list of ints")
        compiled = self.compiled(using)
        params = list(compiled.params)
        for name, positions in compiled.positions.items():
            for position in positions:
                # The type of the marker it replaces: a list stays AnyOf's SQLite parameter.
                params[position] = type(compiled.params[position])(values[name])
        with _cursor(connections[using]) as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        if compiled.converters:
            fetched = compiled.compiler.apply_converters(fetched, compiled.converters)
        names = compiled.names
        return [dict(zip(names, row, strict=True)) for row in fetched]


class AnyOf(Lookup):
    """``lhs`` is one of a list of ids sent as one parameter, so that a page's ids make one
    statement whatever their number, which ``CompiledRead`` can keep (``__in`` writes a
    placeholder per id): ``= ANY(<bigint[]>)`` on PostgreSQL, ``IN (SELECT value FROM
    json_each(<JSON array>))`` on SQLite. Used as ``filter(AnyOf(F("task_id"), ids))``."""

    prepare_rhs = False

    def as_sql(self, compiler, connection):
        raise NotSupportedError(f"AnyOf has no SQL for {connection.vendor}")

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs}::bigint[])", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        ids = [JsonArrayParameter(param) for param in rhs_params]
        return f"{lhs} IN (SELECT value FROM json_each({rhs}))", [*lhs_params, *ids]


class JsonArrayParameter(list):
    """A list that SQLite receives as its JSON text (sqlite3's ``__conform__`` protocol)."""

    def __conform__(self, protocol):
        return json.dumps(self)


def _cursor(connection):
    """A cursor of ``connection`` as ``connection.cursor()`` gives (execute wrappers, errors
    as Django's), binding parameters on the server on PostgreSQL: psycopg prepares a
    statement once the connection has run it ``prepare_threshold`` times (the client-side
    binding of the ORM's cursors never does).

    While queries are logged (DEBUG, or a test capturing them) the ORM's own cursor is used:
    psycopg forgets a prepared statement's text, and the log would show None for it."""
    if connection.vendor != "postgresql" or connection.queries_logged:
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))
