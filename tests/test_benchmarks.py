"""The benchmark harness on a tiny data set: its baselines still answer what the endpoints
answer (ids, tags, count and the whole body), so `make bench` cannot rot unnoticed."""

import pytest
from django.db import connection

from benchmarks import data, suite
from benchmarks.baselines import Raw

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def loaded(settings):
    settings.ROOT_URLCONF = "benchmarks.urls"
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    size = data.Size(tasks=400, big_user_tasks=200, users=4)
    data.load(connection, size, log=lambda text: None)
    if connection.vendor == "sqlite":
        data.fix_sqlite_anchors(connection)
    data.analyze(connection)
    return size


def test_every_case_runs_and_the_baselines_answer_what_the_endpoints_answer(loaded):
    raw = Raw(connection.cursor, connection.vendor)

    results = suite.run(connection, raw, loaded, rounds=2, only=None, log=lambda text: None)

    checked = {r.case: r.checked for r in results if r.checked}
    assert set(checked) == {
        "list", "list -priority pending", "list due_date", "list tags=work",
        "list search=invoice", "detail",
    }  # fmt: skip
    assert all("whole body" in text for text in checked.values())
    assert all(len(samples) >= 1 for r in results for samples in r.samples.values())


def test_the_search_and_tag_cases_match_a_realistic_share_of_tasks(loaded):
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM tasks_task WHERE user_id = 1")
        (total,) = cursor.fetchone()
        cursor.execute(
            "SELECT COUNT(*) FROM tasks_task WHERE user_id = 1 AND (lower(title) LIKE %s "
            "OR lower(description) LIKE %s)",
            ["%invoice%", "%invoice%"],
        )
        (invoices,) = cursor.fetchone()
        cursor.execute("SELECT COUNT(DISTINCT user_id) FROM tasks_tag WHERE lower(name) = 'work'")
        (users_with_work,) = cursor.fetchone()

    assert 0 < invoices < total * 0.1
    assert users_with_work == loaded.users
