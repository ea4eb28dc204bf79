"""Sorting GET /api/tasks/: ``ordering=[-]field`` and ``sort_by`` + ``sort_order``."""

import datetime as dt

import pytest

from tasks.models import Task
from tests.factories import make_task

UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def titles(api, query: str) -> list[str]:
    response = api.get(f"/api/tasks/?{query}")
    assert response.status_code == 200, response.json()
    return [t["title"] for t in response.json()["results"]]


def both_forms(field: str, descending: bool) -> list[str]:
    """The two spellings of one sort: DRF's ``ordering`` and the seed's ``sort_by``."""
    return [
        f"ordering={'-' if descending else ''}{field}",
        f"sort_by={field}&sort_order={'desc' if descending else 'asc'}",
    ]


# --- priority: by urgency, never alphabetically -------------------------------------------


@pytest.fixture
def priorities(alice):
    # Created in an order that is neither urgency nor alphabetical (high < low < medium < urgent).
    for title, priority in [("M", "medium"), ("U", "urgent"), ("L", "low"), ("H", "high")]:
        make_task(alice, title=title, priority=priority)


@pytest.mark.parametrize("query", both_forms("priority", descending=True))
def test_sorting_by_priority_descending_puts_urgent_first(api, priorities, query):
    assert titles(api, query) == ["U", "H", "M", "L"]


@pytest.mark.parametrize("query", both_forms("priority", descending=False))
def test_sorting_by_priority_ascending_puts_low_first(api, priorities, query):
    assert titles(api, query) == ["L", "M", "H", "U"]


@pytest.mark.parametrize("query", both_forms("priority", descending=True))
def test_sorting_by_priority_breaks_ties_by_id_in_the_same_direction(api, alice, query):
    first = make_task(alice, title="first high", priority="high")
    second = make_task(alice, title="second high", priority="high")
    make_task(alice, title="urgent", priority="urgent")
    assert first.pk < second.pk

    assert titles(api, query) == ["urgent", "second high", "first high"]


@pytest.mark.parametrize("query", both_forms("priority", descending=False))
def test_sorting_by_priority_ascending_breaks_ties_by_ascending_id(api, alice, query):
    make_task(alice, title="first high", priority="high")
    make_task(alice, title="second high", priority="high")
    make_task(alice, title="low", priority="low")

    assert titles(api, query) == ["low", "first high", "second high"]


# --- due date: tasks without one last in both directions ----------------------------------


@pytest.fixture
def due_dates(alice):
    make_task(alice, title="no date 1")
    make_task(alice, title="December", due_date=at(2026, 12, 1, 9))
    make_task(alice, title="January", due_date=at(2026, 1, 1, 9))
    make_task(alice, title="no date 2")
    make_task(alice, title="June", due_date=at(2026, 6, 1, 9))


@pytest.mark.parametrize("query", both_forms("due_date", descending=False))
def test_sorting_by_due_date_ascending_puts_tasks_without_a_date_last(api, due_dates, query):
    assert titles(api, query) == ["January", "June", "December", "no date 1", "no date 2"]


@pytest.mark.parametrize("query", both_forms("due_date", descending=True))
def test_sorting_by_due_date_descending_still_puts_tasks_without_a_date_last(api, due_dates, query):
    assert titles(api, query) == ["December", "June", "January", "no date 2", "no date 1"]


@pytest.mark.parametrize("query", both_forms("due_date", descending=False))
def test_sorting_by_due_date_compares_instants_not_local_wall_clocks(api, alice, query):
    # 09:00 in Tokyo (00:00 UTC) comes before 08:00 in London (08:00 UTC) on the same day.
    make_task(alice, title="London", due_date=dt.datetime(2026, 1, 1, 8), timezone="Europe/London")
    make_task(alice, title="Tokyo", due_date=dt.datetime(2026, 1, 1, 9), timezone="Asia/Tokyo")

    assert titles(api, query) == ["Tokyo", "London"]


# --- title --------------------------------------------------------------------------------


@pytest.fixture
def named(alice):
    for title in ("banana", "Cherry", "apple", "Date"):
        make_task(alice, title=title)


@pytest.mark.parametrize("query", both_forms("title", descending=False))
def test_sorting_by_title_ascending_ignores_case(api, named, query):
    assert titles(api, query) == ["apple", "banana", "Cherry", "Date"]


@pytest.mark.parametrize("query", both_forms("title", descending=True))
def test_sorting_by_title_descending_ignores_case(api, named, query):
    assert titles(api, query) == ["Date", "Cherry", "banana", "apple"]


# --- created_at / updated_at ---------------------------------------------------------------


@pytest.fixture
def stamped(alice):
    """Tasks whose created and updated times run in opposite directions."""
    for title, created, updated in [
        ("middle", at(2025, 2, 1), at(2025, 5, 1)),
        ("oldest", at(2025, 1, 1), at(2025, 6, 1)),
        ("newest", at(2025, 3, 1), at(2025, 4, 1)),
    ]:
        task = make_task(alice, title=title)
        Task.objects.filter(pk=task.pk).update(created_at=created, updated_at=updated)


@pytest.mark.parametrize("query", both_forms("created_at", descending=False))
def test_sorting_by_created_at_ascending_puts_the_oldest_first(api, stamped, query):
    assert titles(api, query) == ["oldest", "middle", "newest"]


@pytest.mark.parametrize("query", both_forms("created_at", descending=True))
def test_sorting_by_created_at_descending_puts_the_newest_first(api, stamped, query):
    assert titles(api, query) == ["newest", "middle", "oldest"]


@pytest.mark.parametrize("query", both_forms("updated_at", descending=False))
def test_sorting_by_updated_at_ascending_puts_the_least_recently_changed_first(api, stamped, query):
    assert titles(api, query) == ["newest", "middle", "oldest"]


@pytest.mark.parametrize("query", both_forms("updated_at", descending=True))
def test_sorting_by_updated_at_descending_puts_the_last_changed_first(api, stamped, query):
    assert titles(api, query) == ["oldest", "middle", "newest"]


def test_a_patch_moves_the_task_to_the_top_of_the_updated_at_sort(api, stamped):
    newest = Task.objects.get(title="newest")

    api.patch(f"/api/tasks/{newest.pk}/", {"description": "touched"})

    assert titles(api, "ordering=-updated_at")[0] == "newest"


# --- default and ties ------------------------------------------------------------------------


def test_the_default_order_is_newest_first(api, stamped):
    assert titles(api, "") == ["newest", "middle", "oldest"]


def test_the_default_order_breaks_ties_by_newest_id(api, alice):
    for title in ("first", "second", "third"):
        make_task(alice, title=title)
    Task.objects.update(created_at=at(2025, 1, 1))

    assert titles(api, "") == ["third", "second", "first"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ordering=created_at", ["first", "second", "third"]),
        ("ordering=-created_at", ["third", "second", "first"]),
        ("ordering=due_date", ["first", "second", "third"]),
        ("ordering=-due_date", ["third", "second", "first"]),
        ("ordering=title", ["first", "second", "third"]),
        ("ordering=updated_at", ["first", "second", "third"]),
        ("ordering=-updated_at", ["third", "second", "first"]),
    ],
)
def test_ties_are_broken_by_id(api, alice, query, expected):
    for title in ("first", "second", "third"):
        task = make_task(alice, title=title, due_date=at(2026, 1, 1))
        Task.objects.filter(pk=task.pk).update(
            title="same", created_at=at(2025, 1, 1), updated_at=at(2025, 1, 1)
        )
        Task.objects.filter(pk=task.pk).update(description=title)

    response = api.get(f"/api/tasks/?{query}").json()["results"]

    assert [t["description"] for t in response] == expected


def test_sort_and_filter_combine(api, alice):
    make_task(alice, title="low done", priority="low", completed=True)
    make_task(alice, title="low", priority="low")
    make_task(alice, title="urgent", priority="urgent")

    assert titles(api, "status=pending&ordering=-priority") == ["urgent", "low"]


def test_sort_order_alone_reverses_the_default_sort(api, stamped):
    assert titles(api, "sort_order=asc") == ["oldest", "middle", "newest"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("ordering=colour", "ordering"),
        ("ordering=--priority", "ordering"),
        ("ordering=user", "ordering"),
        ("sort_by=user__password", "sort_by"),
        ("sort_by=priority&sort_order=sideways", "sort_order"),
    ],
)
def test_an_unknown_sort_is_400_naming_the_parameter(api, alice, query, field):
    response = api.get(f"/api/tasks/?{query}")

    assert response.status_code == 400
    assert field in response.json()
