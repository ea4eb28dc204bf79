"""``search`` and the tag filters read indexes (migration 0010), with the documented results.

Search: every whitespace-separated word appears, ignoring case, in the title or in the
description. PostgreSQL reads a ``pg_trgm`` GIN index, SQLite an FTS5 ``trigram`` table kept
in sync by triggers; words shorter than three characters are looked for row by row.
Tag filters resolve the names against the user's own tags, then read ``task_tags`` by tag.
"""

import random
from urllib.parse import urlencode

import pytest
from django.db import connection

from tasks import services
from tasks.models import TASK_SEARCH_FTS_TABLE, Task
from tasks.selectors import TaskFilterSet
from tests.factories import make_task

SQLITE = connection.vendor == "sqlite"


def found(api, **params) -> tuple[int, set[str]]:
    response = api.get(f"/api/tasks/?{urlencode(params)}")
    assert response.status_code == 200, response.json()
    body = response.json()
    return body["count"], {t["title"] for t in body["results"]}


def titles(api, search: str) -> set[str]:
    count, result = found(api, search=search)
    assert count == len(result)
    return result


def assert_search_index_intact() -> None:
    """On SQLite, FTS5 compares its index with the task table: it raises if they disagree."""
    if SQLITE:
        with connection.cursor() as cursor:
            table = TASK_SEARCH_FTS_TABLE
            cursor.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")


@pytest.mark.parametrize(
    ("tasks", "search", "expected"),
    [
        # Each word may be in either field, but a word never spans the two.
        ([("Pay the", "invoice of May")], "the invoice", {"Pay the"}),
        ([("Pay the", "invoice of May")], "theinvoice", set()),
        ([("abc", "def")], "cdef", set()),
        ([("abc", "def")], "abc def", {"abc"}),
        # Case, beyond ASCII; accents are letters of their own.
        ([("Invoice", "")], "INVOICE", {"Invoice"}),
        ([("Inscrire à l'école", "")], "ÉCOLE", {"Inscrire à l'école"}),
        ([("x", "Ångström units")], "ångström", {"x"}),
        ([("Inscrire à l'école", "")], "ecole", set()),
        # Words shorter than a trigram are found too (without the index), alone or mixed.
        ([("To do", ""), ("Other", "")], "do", {"To do"}),
        ([("Pay invoice", "at 9"), ("Pay invoice", "")], "9 INVOICE", {"Pay invoice"}),
        ([("a", "")], "A", {"a"}),
        # LIKE's and FTS5's special characters are plain text.
        ([("50% off", ""), ("500 off", "")], "50%", {"50% off"}),
        ([("a_b", ""), ("axb", "")], "a_b", {"a_b"}),
        ([("a_b", ""), ("axb", "")], "_", {"a_b"}),
        ([("in%ce", ""), ("invoice", "")], "in%ce", {"in%ce"}),
        ([('say "hi" now', ""), ("say hi", "")], '"hi"', {'say "hi" now'}),
        ([("back\\slash", ""), ("backslash", "")], "k\\s", {"back\\slash"}),
        ([("invoice", ""), ("invoice*", "")], "invoice*", {"invoice*"}),
        ([("NEAR(a b)", ""), ("a b", "")], "NEAR(a", {"NEAR(a b)"}),
        ([("this AND that", ""), ("this that", "")], "AND", {"this AND that"}),
    ],
)
def test_search(api, alice, tasks, search, expected):
    for title, description in tasks:
        make_task(alice, title=title, description=description)

    assert titles(api, search) == expected


def test_search_never_finds_another_users_tasks(api, alice, bob):
    make_task(alice, title="Alice's invoice")
    make_task(bob, title="Bob's invoice", description="invoice")

    assert titles(api, "invoice") == {"Alice's invoice"}
    assert titles(api, "in") == {"Alice's invoice"}


def test_the_search_index_follows_edits_and_deletes(api, alice):
    task = make_task(alice, title="Send invoice", description="to ACME")
    gone = make_task(alice, title="Old receipt", description="shred")

    services.task_update(task=task, data={"title": "Send quote", "description": "to Globex"})
    services.task_delete(task=gone)

    assert titles(api, "invoice") == set()
    assert titles(api, "acme") == set()
    assert titles(api, "quote globex") == {"Send quote"}
    assert titles(api, "receipt") == set()
    assert titles(api, "shred") == set()
    assert_search_index_intact()


def test_the_search_index_is_left_alone_by_other_changes(api, alice):
    task = make_task(alice, title="Send invoice")

    services.task_update(task=task, data={"priority": "high", "completed": True})

    assert titles(api, "invoice") == {"Send invoice"}
    assert_search_index_intact()


@pytest.mark.skipif(not SQLITE, reason="the FTS5 table and its triggers are SQLite's")
def test_the_search_triggers_survive_every_migration(db):
    # Django rebuilds tasks_task on SQLite for most ALTERs, dropping its triggers: a later
    # migration that does so must create them again (tasks/migrations/0010).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tasks_task'"
        )
        triggers = {row[0] for row in cursor.fetchall()}

    assert triggers >= {
        "tasks_task_search_insert",
        "tasks_task_search_update",
        "tasks_task_search_delete",
    }


@pytest.mark.skipif(SQLITE, reason="PostgreSQL plans")
def test_the_search_condition_is_the_trigram_indexs_expression_on_postgresql(alice):
    # Without the owner's condition (the index's other column) and with sequential scans off,
    # only task_search_trgm can answer: it does if the filter's expression is the index's.
    make_task(alice, title="Send invoice")
    searched = TaskFilterSet(data={"search": "invoice"}, queryset=Task.objects.all()).qs

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = searched.order_by().explain()

    assert "Bitmap Index Scan on task_search_trgm" in plan
    assert [t.title for t in searched] == ["Send invoice"]


# --- the indexed paths agree with the plain definition, on varied data ---------------------

ALPHABET = ["a", "b", "A", "B", "é", "É", "ö", "%", "_", " ", " ", "\n"]


def _text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(length))


def _matches(task: tuple[str, str], search: str) -> bool:
    title, description = (part.lower() for part in task)
    return all(w.lower() in title or w.lower() in description for w in search.split())


def test_search_agrees_with_its_definition_on_varied_text(api, alice, bob):
    rng = random.Random(12)
    tasks = []
    for i in range(40):
        title, description = f"{_text(rng, rng.randint(1, 8))}#{i}", _text(rng, rng.randint(0, 12))
        task = make_task(alice, title=title, description=description)
        tasks.append((task.title, task.description))
        make_task(bob, title=title, description=description)
    searches = ["ab", "aB", "éa", "ÉÖ", "a%", "_b", "%_", "abab", "a b", "bé a", "ab ba é", "ö%é"]
    searches += [_text(rng, rng.randint(1, 5)).strip() or "a" for _ in range(30)]

    for search in searches:
        expected = {title for title, description in tasks if _matches((title, description), search)}
        assert titles(api, search) == expected, search


def test_tag_filters_agree_with_their_definition(api, alice, bob):
    rng = random.Random(7)
    names = ["Work", "home", "ÉCOLE", "q4", "Errands"]
    for name in ["work", "secret"]:
        make_task(bob, title=f"Bob's {name}", tags=[name])
    tagged = {}
    for i in range(40):
        chosen = rng.sample(names, rng.randint(0, 4))
        tagged[f"Task {i}"] = {n.lower() for n in chosen}
        make_task(alice, title=f"Task {i}", tags=chosen)
    queries = ["work", "WORK", "école", "home,q4", "work,errands,home", "secret", "work,secret"]
    queries += ["nothing", " work , home ", "q4,q4"]

    for query in queries:
        wanted = {n.strip().lower() for n in query.split(",")}
        any_of = {t for t, tags in tagged.items() if tags & wanted}
        all_of = {t for t, tags in tagged.items() if wanted <= tags}
        assert found(api, tags=query) == (len(any_of), any_of), query
        assert found(api, tags_all=query) == (len(all_of), all_of), query
        both = found(api, tags=query, tags_all="home")
        assert both[1] == {t for t in any_of if "home" in tagged[t]}, query
