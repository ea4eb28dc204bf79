"""Builds the cases against a loaded database and runs them."""

from __future__ import annotations

import time

from .baselines import Raw, list_queries
from .cases import Case, Goal, Result, compare_documents, compare_lists, measure
from .client import WsgiClient
from .data import Size, secret_for

BASE_URL = "http://127.0.0.1:8000/api/tasks/"


def goals(vendor: str) -> dict[str, Goal]:
    if vendor == "postgresql":
        return {
            "list": Goal(ratio=2), "list -priority pending": Goal(ratio=2),
            "list due_date": Goal(ratio=2), "list tags=work": Goal(ms=15),
            "list search=invoice": Goal(ms=20), "detail": Goal(ratio=2),
            "relay, bulk": Goal(rate=3000),
        }  # fmt: skip
    return {"list": Goal(ratio=2.5), "list search=invoice": Goal(ratio=2.5)}


def build(connection, raw: Raw, size: Size) -> list[Case]:
    secret = secret_for(0, size)
    app = WsgiClient(secret)
    goal = goals(connection.vendor)
    cases = []
    for name, q in list_queries(connection.vendor).items():
        naive_query = q.query

        def app_call(r, q=q):
            return app.get(f"/api/tasks/?{q.query}").body

        def raw_call(r, q=q):
            return raw.list(secret, q, base_url=BASE_URL)

        def naive_call(r, nq=naive_query):
            return app.get(f"/bench/naive/tasks/?{nq}").body

        cases.append(
            Case(
                name,
                {"app": app_call, "raw": raw_call, "naive": naive_call},
                goal.get(name),
                check=compare_lists,
                count_statements=True,
            )
        )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT id FROM tasks_task WHERE user_id = 1 AND series_id IS NOT NULL "
            "AND remind_at IS NOT NULL ORDER BY id DESC LIMIT 1"
        )
        detail_id = cur.fetchone()[0]
    cases.append(
        Case(
            "detail",
            {
                "app": lambda r: app.get(f"/api/tasks/{detail_id}/").body,
                "raw": lambda r: raw.detail(secret, detail_id),
                "naive": lambda r: app.get(f"/bench/naive/tasks/{detail_id}/").body,
            },
            goal.get("detail"),
            check=compare_documents,
            count_statements=True,
            rounds_factor=5,
        )
    )

    def create(path):
        def call(r):
            body = {"title": f"Send invoice {r} to the client", "tags": ["work", "Errands"]}
            return app.post(path, body, expect=201).body

        return call

    cases.append(
        Case(
            "create with two tags",
            {"app": create("/api/tasks/"), "plain": create("/bench/plain/tasks/create/")},
            count_statements=True,
        )
    )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT id FROM tasks_task WHERE user_id = 1 AND series_id IS NOT NULL "
            "AND NOT completed ORDER BY id"
        )
        pending = [row[0] for row in cur.fetchall()]
    queue = iter(pending)

    def complete(r):
        return app.post(f"/api/tasks/{next(queue)}/complete/").body

    cases.append(Case("complete a recurring task", {"app": complete}, count_statements=True))

    def sweep(r):
        from notifications.services import reminders_sweep

        return reminders_sweep()

    cases.append(Case("reminder sweep", {"app": sweep}, count_statements=True))
    return cases


def run(connection, raw: Raw, size: Size, *, rounds: int, only: set[str] | None,
        log=print) -> list[Result]:  # fmt: skip
    from . import background

    results = []
    for case in build(connection, raw, size):
        if only and case.name not in only:
            continue
        started = time.perf_counter()
        results.append(measure(case, rounds=rounds))
        log(f"  {case.name}: {time.perf_counter() - started:.1f} s")
    for name, fn in background.CASES.items():
        if only and name not in only:
            continue
        results.append(fn(connection, size, rounds=rounds))
        log(f"  {name}: done")
    return results
