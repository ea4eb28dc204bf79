"""``manage.py seed_demo``: the documented demo login with a realistic set of tasks."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from tasks.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERNAME
from tasks.models import Category, Profile, Tag, Task
from tests.factories import make_task


def seed(*args) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """``seed_demo`` run once for the module, in a transaction rolled back at its end."""
    with django_db_blocker.unblock(), transaction.atomic():
        seed()
        yield
        transaction.set_rollback(True)


@pytest.fixture
def demo(seeded, db):
    return get_user_model().objects.get(username=DEMO_USERNAME)


def test_seed_demo_creates_the_documented_login(demo):
    assert demo.check_password(DEMO_PASSWORD)
    assert Profile.objects.filter(user=demo).exists()


def test_the_demo_password_is_in_the_command_help():
    from tasks.management.commands.seed_demo import Command

    assert DEMO_USERNAME in Command.help
    assert DEMO_PASSWORD in Command.help


def test_seed_demo_creates_more_than_ten_tasks(demo):
    assert demo.tasks.count() > 10


def test_the_demo_has_overdue_tasks(demo):
    assert demo.tasks.filter(completed=False, due_date__lt=timezone.now()).exists()


def test_the_demo_has_recurring_tasks(demo):
    recurring = [t for t in demo.tasks.all() if t.has_recurrence]

    assert len(recurring) >= 2
    assert any(t.recurrence_rule for t in recurring)
    assert any(t.recurrence_type != "none" for t in recurring)


def test_the_demo_has_reminders(demo):
    assert demo.tasks.filter(remind_at__isnull=False).count() >= 2
    assert demo.tasks.filter(remind_before__isnull=False).exists()


def test_the_demo_has_a_completed_task_and_one_without_a_due_date(demo):
    assert demo.tasks.filter(completed=True, completed_at__isnull=False).exists()
    assert demo.tasks.filter(due_date__isnull=True).exists()


def test_the_demo_has_categories_and_tags(demo):
    assert Category.objects.filter(user=demo).count() >= 3
    assert Tag.objects.filter(user=demo).count() >= 5
    assert demo.tasks.filter(category__isnull=False).exists()


def test_the_demo_uses_every_priority(demo):
    assert set(demo.tasks.values_list("priority", flat=True)) == {
        "low",
        "medium",
        "high",
        "urgent",
    }


def test_running_seed_demo_twice_duplicates_nothing(demo):
    counts = (Task.objects.count(), Category.objects.count(), Tag.objects.count())

    output = seed()

    assert (Task.objects.count(), Category.objects.count(), Tag.objects.count()) == counts
    assert get_user_model().objects.filter(username=DEMO_USERNAME).count() == 1
    assert "nothing to do" in output


def test_seed_demo_reset_recreates_the_tasks_without_duplicating(demo):
    counts = (Task.objects.count(), Category.objects.count(), Tag.objects.count())

    seed("--reset")

    assert (Task.objects.count(), Category.objects.count(), Tag.objects.count()) == counts


def test_seed_demo_leaves_other_users_alone(demo, alice):
    make_task(alice, title="Mine")

    seed("--reset")

    assert list(alice.tasks.values_list("title", flat=True)) == ["Mine"]


def test_the_demo_login_works_through_the_api(demo):
    client = APIClient()
    token = client.post(
        "/api/auth/token/", {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    body = client.get("/api/tasks/?overdue=true&ordering=-priority").json()

    assert body["count"] >= 1
    assert client.get("/api/tasks/").json()["count"] == demo.tasks.count()


def test_seed_demo_on_an_empty_database_creates_the_demo(db):
    # Runs in a module whose other tests share one seeded database; prove the first run too.
    get_user_model().objects.filter(username=DEMO_USERNAME).delete()

    output = seed()

    assert get_user_model().objects.get(username=DEMO_USERNAME).tasks.count() > 10
    assert "Demo user ready" in output
