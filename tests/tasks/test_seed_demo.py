"""``manage.py seed_demo``: the documented demo login with a realistic set of tasks."""

import datetime as dt
import io
import zoneinfo
from collections import Counter

import pytest
from dateutil.rrule import rrulestr
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from events.relay import relay_pending
from notifications.models import DeliveryState, ReminderDelivery
from recurrence.series import effective_rule
from tasks.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERNAME
from tasks.models import Category, Profile, RecurrenceMode, Tag, Task
from tests.factories import make_task

#: Due at 15:00 today: overdue or not depending on the time of day.
REVIEW = "Review pull requests"


def seed(*args) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """``seed_demo`` run once for the module, in a transaction rolled back at its end."""
    with django_db_blocker.unblock(), transaction.atomic():
        seed()
        relay_pending()  # the consumers see the new tasks (they schedule the reminders)
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


def titles(tasks) -> set[str]:
    return set(tasks.values_list("title", flat=True))


def test_seed_demo_creates_a_dozen_pending_tasks_and_one_done(demo):
    assert demo.tasks.filter(completed=False).count() == 13
    [done] = demo.tasks.filter(completed=True)
    assert done.title == "Set up Tideline"
    assert done.completed_at is not None


def test_the_demo_has_overdue_tasks(demo):
    overdue = titles(demo.tasks.filter(completed=False, due_date__lt=timezone.now()))

    assert overdue - {REVIEW} == {
        "Prepare quarterly report",
        "Water the plants",
        "Book dentist appointment",
    }


def test_the_demo_has_the_recurring_tasks_the_readme_names(demo):
    recurring = {
        t.title: (t.recurrence_rule, t.recurrence_type, t.recurrence_mode)
        for t in demo.tasks.all()
        if t.has_recurrence
    }

    assert recurring == {
        "Team stand-up": ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "none", "schedule"),
        "Pay rent": ("FREQ=MONTHLY;BYMONTHDAY=1", "none", "schedule"),
        "30-minute run": ("FREQ=DAILY;INTERVAL=2", "none", "completion"),
        "Water the plants": ("", "weekly", "schedule"),  # a preset, not a rule
        "Take out the recycling": ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TH", "none", "schedule"),
    }


def test_the_demo_has_reminders_before_the_due_date_and_at_a_time(demo):
    reminders = {t.title: t.remind_before for t in demo.tasks.filter(remind_at__isnull=False)}

    assert reminders == {
        "Prepare quarterly report": dt.timedelta(days=1),
        "Book dentist appointment": None,  # at a set time
        REVIEW: dt.timedelta(minutes=30),
        "Team stand-up": dt.timedelta(minutes=10),
        "Pay rent": dt.timedelta(days=1),
        "Renew passport": None,  # at a set time
    }


def test_the_demo_has_tasks_without_a_due_date(demo):
    assert titles(demo.tasks.filter(due_date__isnull=True)) == {
        "Read 'Designing Data-Intensive Applications' ch. 11",
        "Plan weekend trip",
        "Set up Tideline",
    }


def test_the_demo_has_four_categories_and_tags_on_every_task(demo):
    categories = Category.objects.filter(user=demo)
    assert sorted(categories.values_list("name", flat=True)) == [
        "Health",
        "Home",
        "Learning",
        "Work",
    ]
    per_category = Counter(demo.tasks.values_list("category__name", flat=True))
    assert per_category == {"Work": 4, "Home": 3, "Health": 2, "Learning": 3, None: 2}
    assert Tag.objects.filter(user=demo).count() == 14
    assert demo.tasks.filter(tags__isnull=True).count() == 0


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

    overdue = [t["title"] for t in body["results"] if t["title"] != REVIEW]
    assert overdue == ["Prepare quarterly report", "Book dentist appointment", "Water the plants"]
    assert client.get("/api/tasks/").json()["count"] == 14


def test_seed_demo_on_an_empty_database_creates_the_demo(db):
    # Runs in a module whose other tests share one seeded database; prove the first run too.
    get_user_model().objects.filter(username=DEMO_USERNAME).delete()

    output = seed()

    assert get_user_model().objects.get(username=DEMO_USERNAME).tasks.count() == 14
    assert "Demo user ready: log in as 'demo' / 'tideline-demo' (14 tasks)." in output


# --- the demo shows the product at its best ------------------------------------------------


def local(instant: dt.datetime, zone: str) -> dt.datetime:
    return instant.astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)


def test_every_recurring_demo_task_is_first_due_on_an_occurrence_of_its_rule(demo):
    recurring = [t for t in demo.tasks.filter(completed=False) if t.has_recurrence]

    assert len(recurring) == 5
    for task in recurring:
        due = local(task.due_date, task.timezone)
        # dateutil's own expansion: its first occurrence is the first the rule matches.
        first = rrulestr(effective_rule(task), dtstart=due)[0]
        assert first == due, f"{task.title} is first due {due:%a %d %b}, its rule says {first}"


def test_the_demos_rent_is_due_on_the_first_of_a_month_at_ten(demo):
    rent = demo.tasks.get(title="Pay rent")

    due = local(rent.due_date, rent.timezone)
    assert (due.day, due.hour, due.minute) == (1, 10, 0)
    assert due.date() > timezone.now().astimezone(zoneinfo.ZoneInfo(rent.timezone)).date()


def test_the_demo_has_overdue_today_and_upcoming_tasks(demo):
    now = timezone.now()
    pending = [t for t in demo.tasks.filter(completed=False, due_date__isnull=False)]

    def today_there(task) -> dt.date:
        return now.astimezone(zoneinfo.ZoneInfo(task.timezone)).date()

    overdue = {
        t.title
        for t in pending
        if t.due_date < now and local(t.due_date, t.timezone).date() < today_there(t)
    }
    today = {t.title for t in pending if local(t.due_date, t.timezone).date() == today_there(t)}
    upcoming = {t.title for t in pending if local(t.due_date, t.timezone).date() > today_there(t)}
    assert overdue == {"Prepare quarterly report", "Water the plants", "Book dentist appointment"}
    assert today == {REVIEW}
    assert {"Team stand-up", "Pay rent", "Call with the Tokyo office", "Renew passport"} <= upcoming


def test_the_demo_repeats_both_on_a_schedule_and_after_completion(demo):
    modes = Counter(t.recurrence_mode for t in demo.tasks.all() if t.has_recurrence)

    assert set(modes) == {RecurrenceMode.SCHEDULE, RecurrenceMode.COMPLETION}


def test_the_demo_has_a_reminder_scheduled_one_sent_and_one_missed(demo):
    deliveries = {
        d.task.title: (d.state, d.sent_at is not None)
        for d in ReminderDelivery.objects.filter(task__user=demo).select_related("task")
    }

    assert deliveries["Prepare quarterly report"] == (DeliveryState.SENT, True)
    assert deliveries["Book dentist appointment"] == (DeliveryState.MISSED, False)
    scheduled = {title for title, (state, _) in deliveries.items() if state == "scheduled"}
    assert scheduled >= {"Team stand-up", "Renew passport"}
    assert demo.tasks.get(title="Prepare quarterly report").reminder_sent is True
    assert demo.tasks.get(title="Book dentist appointment").reminder_sent is False


def test_the_demo_shows_tasks_in_several_time_zones(demo):
    zones = {t.title: t.timezone for t in demo.tasks.all()}

    assert zones["Team stand-up"] == "America/New_York"
    assert zones["Call with the Tokyo office"] == "Asia/Tokyo"
    assert zones["Renew passport"] == "Europe/Paris"
    assert len(set(zones.values())) >= 3


def test_the_demos_tokyo_call_reads_10_00_in_tokyo_through_the_api(demo):
    client = APIClient()
    client.force_authenticate(demo)
    call = demo.tasks.get(title="Call with the Tokyo office")

    body = client.get(f"/api/tasks/{call.pk}/").json()

    assert body["due_date"].endswith("T10:00:00+09:00")
    assert body["timezone"] == "Asia/Tokyo"
