"""``make bench``: the app beside raw SQL + orjson and a naive DRF viewset, on loaded data.

PostgreSQL when DATABASE_URL is set (its database name must contain ``bench``), else SQLite
at ``$TIDELINE_VAR_DIR/tideline_bench.sqlite3``. See docs/benchmarks.md.

Usage: python -m benchmarks [--tasks N] [--rounds R] [--only CASE ...] [--reload]
       [--skip-load-runs]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time


def environment() -> None:
    """The real settings, as production runs them (DEBUG off), plus what a benchmark needs."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "todo_project.settings"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
    os.environ["DEBUG"] = "false"
    # Throttling still runs; its limit must not turn a benchmark into 429s.
    os.environ["THROTTLE_USER"] = "100000000/min"
    os.environ["TIDELINE_BACKGROUND"] = "false"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"
    os.environ["LOG_LEVEL"] = "WARNING"
    var = os.environ.setdefault("TIDELINE_VAR_DIR", "/tmp/tideline-bench-var")
    os.makedirs(var, exist_ok=True)
    url = os.environ.get("DATABASE_URL")
    if not url:
        os.environ["DATABASE_URL"] = f"sqlite:///{var}/tideline_bench.sqlite3"
    elif "bench" not in url.rsplit("/", 1)[-1]:
        sys.exit("DATABASE_URL must name a benchmark database (tideline_bench...): it is dropped.")


def prepare(size_tasks: int | None, reload: bool, log=print):
    """Migrate, and load unless the kept data's fingerprint matches; then (VACUUM) ANALYZE."""
    from django.core.management import call_command
    from django.db import connection

    from . import data

    if connection.vendor == "postgresql":
        _ensure_postgres_database(connection.settings_dict, drop=reload)
    elif reload and os.path.exists(connection.settings_dict["NAME"]):
        connection.close()
        os.remove(connection.settings_dict["NAME"])
    call_command("migrate", verbosity=0)
    size = data.Size.for_vendor(connection.vendor, size_tasks)
    wanted = data.fingerprint(connection, size)
    if data.stored_fingerprint(connection) != wanted:
        if data.stored_fingerprint(connection) is not None or _has_tasks(connection):
            log("# the kept data does not match this code and size: reloading")
            connection.close()
            if connection.vendor == "postgresql":
                _ensure_postgres_database(connection.settings_dict, drop=True)
            else:
                os.remove(connection.settings_dict["NAME"])
            call_command("migrate", verbosity=0)
        log(f"# loading {size.tasks} tasks on {connection.vendor}")
        data.load(connection, size, log=log)
        if connection.vendor == "sqlite":
            data.fix_sqlite_anchors(connection)
        data.write_fingerprint(connection, wanted)
    else:
        data.restore(connection, size)
    started = time.perf_counter()
    data.analyze(connection)
    log(f"# {'VACUUM ANALYZE' if connection.vendor == 'postgresql' else 'ANALYZE'}: "
        f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    return size


def _has_tasks(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM tasks_task)")
        return bool(cursor.fetchone()[0])


def _ensure_postgres_database(settings_dict: dict, *, drop: bool) -> None:
    import psycopg
    from psycopg import sql

    name = settings_dict["NAME"]
    with psycopg.connect(
        dbname="postgres",
        user=settings_dict.get("USER") or None,
        host=settings_dict.get("HOST") or None,
        port=settings_dict.get("PORT") or None,
        password=settings_dict.get("PASSWORD") or None,
        autocommit=True,
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and drop:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def versions(connection) -> str:
    import platform
    import sqlite3

    import django
    import rest_framework

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            db = f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            db = f"SQLite {sqlite3.sqlite_version}"
    return (
        f"Python {platform.python_version()}, Django {django.__version__}, "
        f"DRF {rest_framework.__version__}, {db}, {os.cpu_count()} CPUs"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "--tasks", type=int, help="default: 1,000,000 on PostgreSQL, 100,000 on SQLite"
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--only", action="append", help="a case name (repeatable)")
    parser.add_argument("--reload", action="store_true", help="drop and load the data again")
    parser.add_argument("--skip-load-runs", action="store_true")
    args = parser.parse_args(argv)
    environment()
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from . import baselines, loadruns, report, suite

    settings.ROOT_URLCONF = "benchmarks.urls"
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    size = prepare(args.tasks, args.reload, log)
    raw, raw_conn = baselines.raw_connection(connection.settings_dict)
    only = set(args.only) if args.only else None
    started = time.perf_counter()
    results = suite.run(connection, raw, size, rounds=args.rounds, only=only, log=log)
    raw_conn.close()
    failure = None
    if not args.skip_load_runs:
        try:
            results += loadruns.run(connection, size, only=only, log=log)
        except Exception as exc:  # report what was measured, then fail
            failure = exc
    print(f"# {size.tasks:,} tasks ({size.big_user_tasks:,} of the measured user), "
          f"{args.rounds} rounds; {versions(connection)}")  # fmt: skip
    print(report.table(results))
    log(f"# measured in {time.perf_counter() - started:.0f} s")
    if failure is not None:
        raise failure


if __name__ == "__main__":
    main()
