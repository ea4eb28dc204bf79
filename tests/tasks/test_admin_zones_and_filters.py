"""What an operator sees in the admin: one task's times in the task's own zone, named, on
every part of its pages (form, read-only fields, inlines, list columns), and filters whose
choices say whose they are."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.contenttypes.models import ContentType

from events.relay import relay_pending
from notifications.models import ReminderDelivery
from tests.factories import make_category, make_tag, make_task
from tests.recurrence.helpers import complete_and_relay

pytestmark = pytest.mark.django_db

BERLIN = "Europe/Berlin"
#: A date-time as the admin writes one, and the zone named after it.
ZONED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? \(([A-Za-z_/+-]+)\)")


@pytest.fixture
def weekly_in_berlin(alice):
    """A weekly Berlin task due Saturday 5 December 2026 09:00 (08:00 UTC), reminded an
    hour before, completed once: it has spawned its next instance and has reminders."""
    task = make_task(
        alice,
        title="Water the plants",
        timezone=BERLIN,
        due_date=dt.datetime(2026, 12, 5, 9, 0),
        remind_before=dt.timedelta(hours=1),
        recurrence_rule="FREQ=WEEKLY;BYDAY=SA",
    )
    relay_pending()
    complete_and_relay(task)
    return task


def zones_named(html: str) -> set[str]:
    return set(ZONED.findall(html))


def test_a_tasks_change_page_shows_every_time_in_the_tasks_zone_named(
    admin_client, weekly_in_berlin
):
    task = weekly_in_berlin
    assert ReminderDelivery.objects.filter(task=task).exists()

    response = admin_client.get(f"/admin/tasks/task/{task.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form["due_date"].value() == dt.datetime(2026, 12, 5, 9, 0)  # typed in Berlin time
    assert "In the task's time zone (Europe/Berlin)." in html
    # Read-only system fields, the spawned instance and the reminders: all Berlin, named.
    assert zones_named(html) == {BERLIN}
    assert "2026-12-05 09:00 (Europe/Berlin)" in html  # the completed task's occurrence
    assert "2026-12-12 09:00 (Europe/Berlin)" in html  # the spawned instance's due date
    assert "2026-12-05 08:00 (Europe/Berlin)" in html  # the reminder, an hour before
    assert "2026-12-05 08:00 (UTC)" not in html


def test_a_spawned_instance_and_a_reminder_are_listed_on_the_tasks_page(
    admin_client, weekly_in_berlin
):
    response = admin_client.get(f"/admin/tasks/task/{weekly_in_berlin.pk}/change/")

    inlines = {
        formset.formset.prefix: formset for formset in response.context["inline_admin_formsets"]
    }
    assert set(inlines) == {"spawned", "deliveries"}
    assert len(inlines["spawned"].formset.forms) == 1
    assert len(inlines["deliveries"].formset.forms) == 1


def test_the_task_list_shows_due_and_reminder_times_with_their_zone(admin_client, alice):
    make_task(
        alice,
        title="Berlin",
        timezone=BERLIN,
        due_date=dt.datetime(2026, 12, 5, 9, 0),
        remind_before=dt.timedelta(minutes=30),
    )
    make_task(alice, title="Tokyo", timezone="Asia/Tokyo", due_date=dt.datetime(2026, 12, 5, 9, 0))

    html = admin_client.get("/admin/tasks/task/").content.decode()

    assert "2026-12-05 09:00 (Europe/Berlin)" in html
    assert "2026-12-05 08:30 (Europe/Berlin)" in html
    assert "2026-12-05 09:00 (Asia/Tokyo)" in html


def test_the_task_list_sorts_by_the_due_date_column(admin_client, alice):
    make_task(alice, title="Later", due_date=dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC))
    make_task(alice, title="Sooner", due_date=dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC))
    changelist = admin_client.get("/admin/tasks/task/").context["cl"]
    due_column = changelist.list_display.index("due_date_in_zone")

    response = admin_client.get(f"/admin/tasks/task/?o={due_column}")

    assert [t.title for t in response.context["cl"].result_list] == ["Sooner", "Later"]


def test_a_reminders_own_page_shows_its_times_in_its_tasks_zone(admin_client, weekly_in_berlin):
    delivery = ReminderDelivery.objects.filter(task=weekly_in_berlin).get()

    listing = admin_client.get("/admin/notifications/reminderdelivery/").content.decode()
    page = admin_client.get(
        f"/admin/notifications/reminderdelivery/{delivery.pk}/change/"
    ).content.decode()

    assert "2026-12-05 08:00 (Europe/Berlin)" in listing
    assert "2026-12-05 08:00 (Europe/Berlin)" in page
    assert zones_named(page) == {BERLIN}


# --- filters ---------------------------------------------------------------------------------


def filter_choices(response, title: str) -> list[str]:
    changelist = response.context["cl"]
    spec = next(spec for spec in changelist.filter_specs if spec.title == title)
    return [choice["display"] for choice in spec.choices(changelist)]


def test_the_category_and_tag_filters_say_whose_each_choice_is(admin_client, alice, bob):
    for user in (alice, bob):
        make_category(user, "Work")
        make_tag(user, "urgent")
    make_category(alice, "Home")

    response = admin_client.get("/admin/tasks/task/")

    assert filter_choices(response, "category") == [
        "All",
        "Home (alice)",
        "Work (alice)",
        "Work (bob)",
        "-",
    ]
    assert filter_choices(response, "tags") == ["All", "urgent (alice)", "urgent (bob)", "-"]


def test_choosing_a_user_narrows_the_category_and_tag_filters_to_theirs(admin_client, alice, bob):
    for user in (alice, bob):
        make_category(user, "Work")
        make_tag(user, "urgent")
        make_task(user, title=f"{user.username}'s task")

    response = admin_client.get(f"/admin/tasks/task/?user__id__exact={bob.pk}")

    assert filter_choices(response, "category") == ["All", "Work (bob)", "-"]
    assert filter_choices(response, "tags") == ["All", "urgent (bob)", "-"]
    assert filter_choices(response, "user") == ["All", "alice", "bob"]
    assert [t.title for t in response.context["cl"].result_list] == ["bob's task"]


def test_a_category_filter_of_another_users_category_lists_nothing(admin_client, alice, bob):
    bobs_work = make_category(bob, "Work")
    make_task(bob, title="Bob's", category=bobs_work)
    make_task(alice, title="Alice's")

    response = admin_client.get(
        f"/admin/tasks/task/?user__id__exact={alice.pk}&category__id__exact={bobs_work.pk}"
    )

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


# --- query counts ----------------------------------------------------------------------------


def test_the_task_list_reads_a_fixed_number_of_queries(
    admin_client, alice, bob, django_assert_num_queries
):
    for user in (alice, bob):
        work = make_category(user, "Work")
        for i in range(3):
            make_task(
                user,
                title=f"{user.username} {i}",
                category=work,
                tags=["urgent"],
                timezone=BERLIN,
                due_date=dt.datetime(2026, 12, 5, 9, 0),
                remind_before=dt.timedelta(hours=1),
            )

    with django_assert_num_queries(QUERIES["list"]):
        response = admin_client.get("/admin/tasks/task/")

    assert len(response.context["cl"].result_list) == 6


def test_a_tasks_page_reads_a_fixed_number_of_queries(
    admin_client, weekly_in_berlin, django_assert_num_queries
):
    ContentType.objects.clear_cache()  # read once per process: the first page reads it

    with django_assert_num_queries(QUERIES["change"]):
        admin_client.get(f"/admin/tasks/task/{weekly_in_berlin.pk}/change/")


#: The list: session, user, the user, category and tag filters' choices, two counts, the page,
#: its tags, the date hierarchy's two. The page: session, user, the task, its tags, the
#: spawned instances, the reminders, the content type, the user, category and series choices.
QUERIES = {"list": 11, "change": 11}


@pytest.mark.parametrize("model", ["category", "tag"])
def test_the_category_and_tag_lists_filter_by_owners_only(admin_client, alice, bob, model):
    for user in (alice, bob):
        make_category(user, "Home")
        make_tag(user, "home")

    response = admin_client.get(f"/admin/tasks/{model}/")

    assert filter_choices(response, "user") == ["All", "alice", "bob"]  # not the operator
