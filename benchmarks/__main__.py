"""``make bench``: side-by-side timings, reported as ratios measured in one run.

Builds a throw-away test database (SQLite by default, PostgreSQL when DATABASE_URL is set),
fills it with one user's tasks (default 100,000, with tags and categories), and compares:

- the task list endpoint (a page of 50, sorted by priority, default sort, filtered) against
  raw SQL that reads the same rows and their tags;
- sorting by the indexed priority rank against the seed's CASE expression over the text;
- the web app's list page (HTML, 50 tasks, with its sidebar) against the API's list of the
  same tasks and against raw SQL.

Usage: python -m benchmarks [--tasks N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_project.test_settings")


def median_ms(func, repeat: int) -> float:
    func()  # warm-up
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    # The test environment wraps template rendering to record each template and a copy of
    # its context for assertions; pages would be timed with that bookkeeping. Render as a
    # server does.
    from django.template import Template
    from django.test.utils import _TestState

    Template._render = _TestState.saved_data.template_render
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        run(args, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def populate(user, count: int) -> None:
    import datetime as dt

    from django.utils import timezone

    from tasks.models import Category, Tag, Task

    rng = random.Random(42)
    categories = Category.objects.bulk_create(
        [Category(user=user, name=f"Category {i}") for i in range(8)]
    )
    tags = Tag.objects.bulk_create([Tag(user=user, name=f"tag{i}") for i in range(20)])
    now = timezone.now()
    priorities = ["low", "medium", "high", "urgent"]
    batch = []
    for i in range(count):
        batch.append(
            Task(
                user=user,
                title=f"Task number {i}",
                description="Something to do" if i % 3 else "",
                priority=rng.choice(priorities),
                due_date=now + dt.timedelta(hours=rng.randint(-500, 2000)) if i % 4 else None,
                completed=i % 5 == 0,
                category=rng.choice(categories) if i % 2 else None,
                timezone="UTC",
            )
        )
        if len(batch) == 5000:
            Task.objects.bulk_create(batch)
            batch = []
    Task.objects.bulk_create(batch)
    through = Task.tags.through
    links = []
    for task_id in Task.objects.filter(user=user).values_list("id", flat=True):
        for tag in rng.sample(tags, 2):
            links.append(through(task_id=task_id, tag_id=tag.pk))
        if len(links) >= 10000:
            through.objects.bulk_create(links)
            links = []
    through.objects.bulk_create(links)


def run(args, connection) -> None:
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from tasks import services
    from tasks.models import Profile

    user = get_user_model().objects.create_user("bench", "bench@example.com", "x")
    Profile.objects.create(user=user)
    started = time.perf_counter()
    populate(user, args.tasks)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"# {args.tasks} tasks on {connection.vendor} "
        f"(populated in {time.perf_counter() - started:.1f} s)",
        file=sys.stderr,
    )

    client = APIClient()
    _, secret = services.api_token_create(user=user, name="Benchmark")
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")

    def endpoint(query: str):
        def call():
            response = client.get(f"/api/tasks/?{query}")
            assert response.status_code == 200, response.content

        return call

    def raw(order_sql: str, where: str = ""):
        sql_rows = (
            "SELECT t.id, t.title, t.description, t.completed, t.completed_at, t.priority, "
            "t.due_date, t.timezone, t.category_id, t.recurrence_rule, t.remind_at, "
            "t.created_at, t.updated_at FROM tasks_task t "
            f"WHERE t.user_id = %s {where} ORDER BY {order_sql} LIMIT 50"
        )

        def call():
            with connection.cursor() as cursor:
                cursor.execute(sql_rows, [user.pk])
                ids = [row[0] for row in cursor.fetchall()]
                cursor.execute(
                    "SELECT tt.task_id, g.name FROM task_tags tt JOIN tasks_tag g "
                    f"ON g.id = tt.tag_id WHERE tt.task_id IN ({','.join(['%s'] * len(ids))})",
                    ids,
                )
                cursor.fetchall()
                cursor.execute(
                    "SELECT COUNT(*) FROM tasks_task t WHERE t.user_id = %s " + where, [user.pk]
                )

        return call

    case_sql = (
        "CASE t.priority WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 "
        "ELSE 1 END DESC, t.id DESC"
    )

    def sort_only(order_sql: str):
        sql = (
            f"SELECT t.id FROM tasks_task t WHERE t.user_id = %s AND NOT t.completed "
            f"ORDER BY {order_sql} LIMIT 50"
        )

        def call():
            with connection.cursor() as cursor:
                cursor.execute(sql, [user.pk])
                cursor.fetchall()

        return call

    rows = [
        (
            "list, default sort (newest first)",
            endpoint("page_size=50"),
            raw("t.created_at DESC, t.id DESC"),
        ),
        (
            "list, ordering=-priority",
            endpoint("ordering=-priority&page_size=50"),
            raw("t.priority_rank DESC, t.id DESC"),
        ),
        (
            "list, ordering=due_date (nulls last)",
            endpoint("ordering=due_date&page_size=50"),
            raw(
                "t.due_date ASC NULLS LAST, t.id ASC"
                if connection.vendor == "postgresql"
                else "t.due_date IS NULL, t.due_date ASC, t.id ASC"
            ),
        ),
        (
            "list, status=pending&priority=high,urgent",
            endpoint("status=pending&priority=high,urgent&page_size=50"),
            raw(
                "t.created_at DESC, t.id DESC",
                "AND NOT t.completed AND t.priority IN ('high', 'urgent')",
            ),
        ),
    ]
    print("| measurement | ours (ms) | baseline (ms) | ratio |")
    print("|---|---|---|---|")
    for label, ours, baseline in rows:
        a, b = median_ms(ours, args.repeat), median_ms(baseline, args.repeat)
        print(
            f"| {label}: endpoint vs raw SQL of the same rows | {a:.2f} | {b:.2f} | {a / b:.1f}x |"
        )
    page_vs_api(args, client, raw, user)
    indexed = median_ms(sort_only("t.priority_rank DESC, t.id DESC"), args.repeat)
    case = median_ms(sort_only(case_sql), args.repeat)
    print(
        f"| top 50 pending by priority: indexed rank vs CASE over text | {indexed:.2f} | "
        f"{case:.2f} | {indexed / case:.2f}x (CASE is {case / indexed:.0f}x slower) |"
    )


def page_vs_api(args, api_client, raw, user) -> None:
    """The list page's server time beside the API's, for the same 50 pending tasks."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    settings.WEB_PAGE_SIZE = 50
    browser = Client()
    browser.force_login(user)

    def page():
        response = browser.get("/tasks/?view=all")
        assert response.status_code == 200, response.status_code

    def api():
        response = api_client.get("/api/tasks/?view=all&ordering=due_date&page_size=50")
        assert response.status_code == 200, response.content

    order = (
        "t.due_date ASC NULLS LAST, t.id ASC"
        if connection.vendor == "postgresql"
        else "t.due_date IS NULL, t.due_date ASC, t.id ASC"
    )
    page_ms = median_ms(page, args.repeat)
    api_ms = median_ms(api, args.repeat)
    raw_ms = median_ms(raw(order, "AND NOT t.completed"), args.repeat)
    print(
        f"| list page /tasks/?view=all (HTML with sidebar) vs the API list of the same tasks | "
        f"{page_ms:.2f} | {api_ms:.2f} | {page_ms / api_ms:.1f}x |"
    )
    print(
        f"| list page /tasks/?view=all vs raw SQL of the same rows | "
        f"{page_ms:.2f} | {raw_ms:.2f} | {page_ms / raw_ms:.1f}x |"
    )


if __name__ == "__main__":
    main()
