"""Every filter of GET /api/tasks/, each with rows that match and rows that do not."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import transaction

from tasks import services
from tasks.models import Task
from tests.factories import UserFactory, make_category, make_task

UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def board(django_db_setup, django_db_blocker):
    """Alice's tasks, one of each kind; bob has look-alikes that must never show up.

    Built once for the module inside a transaction rolled back at its end; each test runs in
    its own savepoint within it, so a test's changes never reach the next one.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build_board()
        transaction.set_rollback(True)


def _build_board() -> SimpleNamespace:
    alice = UserFactory(username="alice", email="alice@example.com")
    bob = UserFactory(username="bob", email="bob@example.com")
    work = make_category(alice, "Work")
    home = make_category(alice, "Home")
    make_task(
        alice,
        title="Past report",
        description="Numbers from FINANCE",
        priority="urgent",
        category=work,
        tags=["Work", "q4"],
        due_date=at(2020, 3, 1, 9),
    )
    make_task(
        alice,
        title="Old chore done",
        priority="low",
        category=home,
        tags=["home"],
        due_date=at(2020, 3, 2, 9),
        completed=True,
    )
    make_task(
        alice,
        title="Buy milk",
        description="and bread",
        priority="high",
        category=home,
        tags=["home", "errands"],
        due_date=at(2099, 12, 1, 23, 30),
    )
    make_task(
        alice,
        title="Dentist",
        priority="medium",
        tags=["health", "errands"],
        due_date=at(2099, 12, 2, 0, 30),
    )
    make_task(alice, title="Someday idea", priority="low")
    make_task(
        alice,
        title="Stand-up",
        priority="medium",
        category=work,
        tags=["work"],
        due_date=at(2099, 12, 3, 9),
        recurrence_rule="FREQ=DAILY",
    )
    make_task(
        alice,
        title="Water plants",
        priority="low",
        category=home,
        due_date=at(2099, 12, 5, 9),
        recurrence_type="weekly",
    )
    Task.objects.filter(user=alice).update(created_at=at(2024, 6, 1, 12))
    Task.objects.filter(title="Past report").update(created_at=at(2020, 1, 1, 12))

    bobs_home = make_category(bob, "Home")
    for title in ("Buy milk", "Past report", "Someday idea"):
        make_task(
            bob,
            title=f"Bob: {title}",
            description="finance milk",
            priority="high",
            category=bobs_home,
            tags=["home", "errands", "work", "q4"],
            due_date=at(2020, 3, 1, 9),
            recurrence_rule="FREQ=DAILY",
        )
    return SimpleNamespace(work=work, home=home)


ALL = {
    "Past report",
    "Old chore done",
    "Buy milk",
    "Dentist",
    "Someday idea",
    "Stand-up",
    "Water plants",
}


def titles(api, query: str) -> set[str]:
    response = api.get(f"/api/tasks/?{query}")
    assert response.status_code == 200, response.json()
    return {t["title"] for t in response.json()["results"]}


FILTERS = [
    # status and completed
    ("status=pending", ALL - {"Old chore done"}),
    ("status=completed", {"Old chore done"}),
    ("completed=true", {"Old chore done"}),
    ("completed=false", ALL - {"Old chore done"}),
    ("completed=1", {"Old chore done"}),
    ("completed=0", ALL - {"Old chore done"}),
    ("completed=True", {"Old chore done"}),
    # priority, one or several
    ("priority=high", {"Buy milk"}),
    ("priority=low", {"Old chore done", "Someday idea", "Water plants"}),
    ("priority=high,urgent", {"Buy milk", "Past report"}),
    ("priority=urgent,medium", {"Past report", "Dentist", "Stand-up"}),
    # category, by id
    ("category={work}", {"Past report", "Stand-up"}),
    ("category={home}", {"Old chore done", "Buy milk", "Water plants"}),
    # tags: any of, case-insensitive
    ("tags=errands", {"Buy milk", "Dentist"}),
    ("tags=q4,health", {"Past report", "Dentist"}),
    ("tags=HOME", {"Old chore done", "Buy milk"}),
    ("tags=work", {"Past report", "Stand-up"}),
    ("tags=nosuchtag", set()),
    # tags_all: all of
    ("tags_all=home,errands", {"Buy milk"}),
    ("tags_all=Errands,HEALTH", {"Dentist"}),
    ("tags_all=work,q4", {"Past report"}),
    ("tags_all=home,health", set()),
    ("tags_all=errands", {"Buy milk", "Dentist"}),
    # due_before / due_after: a date covers the whole (profile-local) day, a date-time is exact
    ("due_before=2020-03-01", {"Past report"}),
    ("due_before=2020-02-29", set()),
    ("due_before=2020-03-01T09:00:00Z", {"Past report"}),
    ("due_before=2020-03-01T08:59:59Z", set()),
    ("due_after=2099-12-02", {"Dentist", "Stand-up", "Water plants"}),
    ("due_after=2099-12-01T23:00:00Z", {"Buy milk", "Dentist", "Stand-up", "Water plants"}),
    ("due_after=2099-12-06", set()),
    ("due_after=2099-12-01&due_before=2099-12-01", {"Buy milk"}),
    (
        "due_after=2020-01-01&due_before=2099-12-02",
        ALL - {"Someday idea", "Stand-up", "Water plants"},
    ),
    ("due_before=2099-12-01T19:00:00-05:00", {"Past report", "Old chore done", "Buy milk"}),
    ("due_before=2020-03-01T10:00:00%2B01:00", {"Past report"}),
    ("due_before=2020-03-01T10:00:00+01:00", {"Past report"}),
    ("due_before=2020-03-01T08:00:00", set()),
    # overdue: pending and due in the past
    ("overdue=true", {"Past report"}),
    ("overdue=false", ALL - {"Past report"}),
    # has_due_date
    ("has_due_date=true", ALL - {"Someday idea"}),
    ("has_due_date=false", {"Someday idea"}),
    # has_recurrence: a rule or a preset
    ("has_recurrence=true", {"Stand-up", "Water plants"}),
    ("has_recurrence=false", ALL - {"Stand-up", "Water plants"}),
    # search: title and description, case-insensitive, every word
    ("search=finance", {"Past report"}),
    ("search=MILK", {"Buy milk"}),
    ("search=bread", {"Buy milk"}),
    ("search=buy%20bread", {"Buy milk"}),
    ("search=buy%20finance", set()),
    ("search=stand", {"Stand-up"}),
    ("search=nothing-like-this", set()),
    ("search=%25", set()),
    ("search=_", set()),
    # created_after / created_before
    ("created_before=2020-01-01", {"Past report"}),
    ("created_before=2019-12-31", set()),
    ("created_after=2024-06-01", ALL - {"Past report"}),
    ("created_after=2024-06-01T12:00:01Z", set()),
    ("created_after=2020-01-02&created_before=2024-06-01", ALL - {"Past report"}),
    # filters combine
    ("status=pending&priority=low&has_due_date=true", {"Water plants"}),
    ("category={home}&tags=home", {"Old chore done", "Buy milk"}),
    ("overdue=false&has_recurrence=true&priority=medium", {"Stand-up"}),
    # no filter: every one of alice's tasks and none of bob's
    ("", ALL),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS, ids=[q or "none" for q, _ in FILTERS])
def test_filter(api, board, query, expected):
    query = query.format(work=board.work.pk, home=board.home.pk)

    assert titles(api, query) == expected


def test_filter_count_matches_the_filtered_rows(api):
    body = api.get("/api/tasks/?tags=errands").json()

    assert body["count"] == 2


def test_due_dates_are_bounded_by_the_users_own_day(api, alice):
    # 00:30 UTC on 2 December is still 1 December in New York.
    services.profile_update(user=alice, data={"timezone": "America/New_York"})

    assert titles(api, "due_after=2099-12-01&due_before=2099-12-01") == {"Buy milk", "Dentist"}


def test_a_naive_date_time_bound_is_read_in_the_users_timezone(api, alice):
    services.profile_update(user=alice, data={"timezone": "Europe/Paris"})

    # 10:00 in Paris is 09:00 UTC: the report's due time, inclusive.
    assert titles(api, "due_before=2020-03-01T10:00:00") == {"Past report"}
    assert titles(api, "due_before=2020-03-01T09:59:00") == set()


def test_overdue_tracks_the_current_time(api, alice):
    make_task(alice, title="Just missed", due_date=dt.datetime.now(UTC) - dt.timedelta(minutes=1))
    make_task(alice, title="Coming up", due_date=dt.datetime.now(UTC) + dt.timedelta(minutes=5))

    assert titles(api, "overdue=true") == {"Past report", "Just missed"}


def test_the_tags_filter_lists_a_task_with_several_matching_tags_once(api, alice):
    make_task(alice, title="Twice tagged", tags=["twice-a", "twice-b"])

    body = api.get("/api/tasks/?tags=twice-a,twice-b").json()

    assert body["count"] == 1
    assert [t["title"] for t in body["results"]] == ["Twice tagged"]


def test_an_empty_filter_value_is_ignored(api):
    assert titles(api, "priority=&tags=&search=&category=&status=") == ALL


SQLITE = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


@pytest.mark.parametrize("query", ["tags=école", "tags_all=école", "search=ÉCOLE"])
def test_tag_and_search_filters_ignore_case_beyond_ascii(api, alice, query):
    make_task(alice, title="Inscrire à l'école", tags=["École"])

    assert titles(api, query) == {"Inscrire à l'école"}
