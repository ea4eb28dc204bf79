"""One-click actions from the list and the task page, with and without JavaScript."""

import datetime as dt
import zoneinfo

import pytest
from django.test import Client

from notifications.models import DeliveryState, ReminderDelivery
from tasks import services
from tasks.models import Task
from tests.factories import UserFactory, make_task

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture
def browser(client, alice):
    client.force_login(alice)
    return client


def htmx(client: Client, method: str, url: str, **data):
    return getattr(client, method)(url, data, HTTP_HX_REQUEST="true")


def test_completing_without_javascript_redirects_back_with_a_message(browser, alice):
    task = make_task(alice, title="Buy milk")

    response = browser.post(
        f"/tasks/{task.pk}/complete/", {"next": "/tasks/?view=today"}, follow=True
    )

    assert response.redirect_chain == [("/tasks/?view=today", 302)]
    assert "Completed “Buy milk”." in response.content.decode()
    assert Task.objects.get(pk=task.pk).completed


def test_completing_with_htmx_returns_the_row_done_and_the_new_counts(browser, alice):
    task = make_task(alice, title="Buy milk")

    response = htmx(browser, "post", f"/tasks/{task.pk}/complete/")

    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="task-{task.pk}"' in body and 'aria-pressed="true"' in body
    assert 'id="sidebar"' in body and 'hx-swap-oob="true"' in body
    assert "Reopen “Buy milk”" in body


def test_completing_a_recurring_task_shows_its_next_instance_in_place(browser, alice):
    task = make_task(
        alice,
        title="Stand-up",
        due_date=dt.datetime(2030, 3, 4, 9, tzinfo=NEW_YORK),
        timezone="America/New_York",
        recurrence_rule="FREQ=WEEKLY;BYDAY=MO,WE",
    )

    completed = htmx(browser, "post", f"/tasks/{task.pk}/complete/").content.decode()
    waiting = htmx(browser, "get", f"/tasks/{task.pk}/next/").content.decode()
    next_due = Task.objects.get(pk=task.pk).next_occurrence_at  # in the task.completed event
    spawned = services.task_spawn_next(task_id=task.pk, next_due=next_due)  # the consumer's call
    found = htmx(browser, "get", f"/tasks/{task.pk}/next/").content.decode()

    assert f'hx-get="/tasks/{task.pk}/next/?attempt=0"' in completed
    assert "Scheduling the next “Stand-up”" in waiting
    assert f'id="task-{spawned.pk}"' in found
    assert "Next instance" in found
    assert spawned.due_date == dt.datetime(2030, 3, 6, 9, tzinfo=NEW_YORK)


def test_the_page_stops_asking_for_a_next_instance_that_never_comes(browser, alice):
    task = make_task(alice, title="Once", recurrence_rule="FREQ=DAILY;COUNT=1", completed=True)

    response = htmx(browser, "get", f"/tasks/{task.pk}/next/?attempt=10")

    assert response.content == b""


@pytest.mark.parametrize("attempt", ["9" * 5000, "\u00b3", "-1"])
def test_a_malformed_attempt_counts_as_the_first(browser, alice, attempt):
    task = make_task(alice, title="Once", recurrence_rule="FREQ=DAILY;COUNT=1", completed=True)

    response = htmx(browser, "get", f"/tasks/{task.pk}/next/?attempt={attempt}")

    assert response.status_code == 200
    assert 'attempt=1"' in response.content.decode()


def test_without_javascript_completing_a_recurring_task_names_the_next_date(browser, alice):
    task = make_task(
        alice,
        title="Rent",
        due_date=dt.datetime(2030, 3, 1, 9, tzinfo=dt.UTC),
        timezone="UTC",
        recurrence_rule="FREQ=MONTHLY;BYMONTHDAY=1",
    )

    response = browser.post(f"/tasks/{task.pk}/complete/", follow=True)

    assert "Completed “Rent”. Next one: 1 Apr 2030 09:00." in response.content.decode()


def test_reopening_a_completed_task(browser, alice):
    task = make_task(alice, title="Oops", completed=True)

    response = htmx(browser, "post", f"/tasks/{task.pk}/reopen/")

    assert 'aria-pressed="false"' in response.content.decode()
    assert not Task.objects.get(pk=task.pk).completed


def test_delete_without_javascript_asks_first_then_deletes(browser, alice):
    task = make_task(alice, title="Old plan")

    confirm = browser.get(f"/tasks/{task.pk}/delete/?next=/tasks/")
    deleted = browser.post(f"/tasks/{task.pk}/delete/", {"next": "/tasks/"}, follow=True)

    assert "Delete “Old plan”?" in confirm.content.decode()
    assert deleted.redirect_chain == [("/tasks/", 302)]
    assert "Deleted “Old plan”." in deleted.content.decode()
    assert not Task.objects.filter(pk=task.pk).exists()


def test_deleting_from_its_own_page_lands_on_the_list(browser, alice):
    task = make_task(alice, title="Old plan")

    response = browser.post(f"/tasks/{task.pk}/delete/", {"next": f"/tasks/{task.pk}/"})

    assert response["Location"] == "/"


def test_the_undo_timer_deletes_with_a_fetch_that_gets_the_new_counts(browser, alice):
    task = make_task(alice, title="Old plan")

    response = browser.post(f"/tasks/{task.pk}/delete/", HTTP_X_REQUESTED_WITH="fetch")

    assert response.status_code == 200
    assert 'id="sidebar"' in response.content.decode()
    assert not Task.objects.filter(pk=task.pk).exists()


def test_changing_the_due_day_inline_keeps_the_time_in_the_tasks_zone(browser, alice):
    task = make_task(
        alice,
        title="Call",
        due_date=dt.datetime(2030, 3, 4, 9, 30, tzinfo=NEW_YORK),
        timezone="America/New_York",
    )

    response = htmx(browser, "post", f"/tasks/{task.pk}/quick-edit/", due_day="2030-03-12")

    task.refresh_from_db()
    assert response.status_code == 200
    assert task.due_date == dt.datetime(2030, 3, 12, 9, 30, tzinfo=NEW_YORK)  # across DST


def test_changing_the_priority_inline(browser, alice):
    task = make_task(alice, title="Call", priority="low")

    response = htmx(browser, "post", f"/tasks/{task.pk}/quick-edit/", priority="urgent")

    task.refresh_from_db()
    assert task.priority == "urgent"
    assert "⚑ Urgent" in response.content.decode()


def test_a_bad_inline_value_is_reported_not_saved(browser, alice):
    task = make_task(alice, title="Call", priority="low")

    with_js = htmx(browser, "post", f"/tasks/{task.pk}/quick-edit/", priority="extreme")
    without = browser.post(f"/tasks/{task.pk}/quick-edit/", {"due_day": "soon"}, follow=True)

    assert with_js["HX-Retarget"] == "#messages"
    assert "Not saved:" in with_js.content.decode()
    assert "Not saved: Enter a date as YYYY-MM-DD." in without.content.decode()
    task.refresh_from_db()
    assert task.priority == "low"


def test_clearing_the_due_day_inline_removes_the_due_date(browser, alice):
    task = make_task(alice, title="Call", due_date=dt.datetime(2030, 3, 4, 9, tzinfo=dt.UTC))

    browser.post(f"/tasks/{task.pk}/quick-edit/", {"due_day": ""})

    task.refresh_from_db()
    assert task.due_date is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/tasks/{pk}/"),
        ("post", "/tasks/{pk}/complete/"),
        ("post", "/tasks/{pk}/reopen/"),
        ("get", "/tasks/{pk}/delete/"),
        ("post", "/tasks/{pk}/delete/"),
        ("post", "/tasks/{pk}/quick-edit/"),
        ("get", "/tasks/{pk}/next/"),
    ],
)
def test_another_users_task_is_a_404_everywhere(client, alice, bob, method, path):
    task = make_task(alice, title="Alice's")
    client.force_login(bob)

    response = getattr(client, method)(path.format(pk=task.pk))

    assert response.status_code == 404
    assert Task.objects.filter(pk=task.pk, completed=False).exists()


def test_actions_need_the_csrf_token(alice):
    task = make_task(alice, title="Guarded")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(f"/tasks/{task.pk}/complete/")

    assert response.status_code == 403
    assert not Task.objects.get(pk=task.pk).completed


def test_actions_change_nothing_on_get(browser, alice):
    task = make_task(alice, title="Safe")

    assert browser.get(f"/tasks/{task.pk}/complete/").status_code == 405
    assert not Task.objects.get(pk=task.pk).completed


# --- the task page --------------------------------------------------------------------


@pytest.fixture
def paris_viewer(client, db):
    user = UserFactory(username="paula", profile__timezone="Europe/Paris")
    client.force_login(user)
    return user


def test_the_task_page_shows_times_in_the_viewers_zone_naming_the_tasks(client, paris_viewer):
    task = make_task(
        paris_viewer,
        title="Call New York",
        due_date=dt.datetime(2030, 3, 4, 9, tzinfo=NEW_YORK),
        timezone="America/New_York",
    )

    body = client.get(f"/tasks/{task.pk}/").content.decode()

    assert "Monday 4 March 2030, 15:00" in body
    assert "(Europe/Paris)" in body
    assert "09:00 in America/New_York, the task's zone" in body
    assert "14:00" not in body  # never UTC wall time


def test_the_task_page_shows_the_zone_once_when_viewer_and_task_agree(client, paris_viewer):
    task = make_task(
        paris_viewer, title="Local", due_date=dt.datetime(2030, 3, 4, 9, tzinfo=dt.UTC)
    )

    body = client.get(f"/tasks/{task.pk}/").content.decode()

    assert "Monday 4 March 2030, 10:00" in body
    assert body.count("Europe/Paris") == 1


def test_the_task_page_shows_the_series_next_occurrences_and_completions(client, paris_viewer):
    first = make_task(
        paris_viewer,
        title="Water plants",
        due_date=dt.datetime(2030, 3, 4, 9, tzinfo=dt.UTC),
        timezone="Europe/Paris",
        recurrence_rule="FREQ=WEEKLY;BYDAY=MO",
    )
    next_due = dt.datetime(2030, 3, 11, 9, tzinfo=dt.UTC)  # 10:00 in Paris
    Task.objects.filter(pk=first.pk).update(
        completed=True, completed_at=first.due_date, next_occurrence_at=next_due
    )
    second = services.task_spawn_next(task_id=first.pk, next_due=next_due)

    body = client.get(f"/tasks/{second.pk}/").content.decode()

    assert "Every week on Monday, on schedule" in body
    assert "Monday 18 March 2030, 10:00" in body  # the next after this (11th) one
    assert f'href="/tasks/{first.pk}/"' in body
    assert "Mon 4 Mar 2030, 10:00" in body  # the earlier occurrence, completed


@pytest.mark.parametrize(
    ("state", "label"),
    [
        (DeliveryState.SCHEDULED, "Scheduled"),
        (DeliveryState.SENT, "Sent"),
        (DeliveryState.MISSED, "Missed"),
        (DeliveryState.FAILED, "Failed"),
    ],
)
def test_the_task_page_shows_the_reminder_status(client, paris_viewer, state, label):
    task = make_task(
        paris_viewer,
        title="Dentist",
        due_date=dt.datetime(2030, 3, 4, 9, tzinfo=dt.UTC),
        remind_before=dt.timedelta(hours=1),
    )
    ReminderDelivery.objects.create(task=task, remind_at=task.remind_at, state=state)

    body = client.get(f"/tasks/{task.pk}/").content.decode()

    assert f'<span class="badge badge-{state}">{label}</span>' in body
    assert "(1 hour before)" in body


def test_a_completion_mode_task_page_explains_instead_of_listing_dates(client, paris_viewer):
    task = make_task(
        paris_viewer,
        title="Run",
        due_date=dt.datetime(2030, 3, 4, 7, tzinfo=dt.UTC),
        recurrence_rule="FREQ=DAILY;INTERVAL=2",
        recurrence_mode="completion",
    )

    body = client.get(f"/tasks/{task.pk}/").content.decode()

    assert "The next one is due every 2 days counted from the moment you complete" in body
    assert "Next occurrences" not in body


@pytest.mark.parametrize(
    ("list_url", "marked"),
    [
        ("/tasks/?view=today", 'href="/tasks/?view=today" aria-current="page"'),
        ("/", 'href="/tasks/?view=all" aria-current="page"'),
    ],
)
def test_the_refreshed_sidebar_still_marks_the_list_the_action_came_from(
    browser, alice, list_url, marked
):
    task = make_task(alice, title="Buy milk")

    response = browser.post(
        f"/tasks/{task.pk}/complete/", {"next": list_url}, HTTP_HX_REQUEST="true"
    )

    assert marked in response.content.decode()


def test_the_refreshed_sidebar_marks_a_saved_view(browser, alice):
    task = make_task(alice, title="Buy milk", priority="high")
    view = services.saved_view_create(user=alice, name="Hot", filters={"priority": "high"})

    response = browser.post(
        f"/tasks/{task.pk}/delete/", {"next": f"/views/{view.pk}/"}, HTTP_X_REQUESTED_WITH="fetch"
    )

    assert f'href="/views/{view.pk}/" aria-current="page"' in response.content.decode()


def test_the_series_and_reminder_name_the_viewers_zone_when_the_task_has_another(
    client, paris_viewer
):
    task = make_task(
        paris_viewer,
        title="Stand-up",
        due_date=dt.datetime(2030, 3, 4, 9, tzinfo=NEW_YORK),
        timezone="America/New_York",
        recurrence_rule="FREQ=DAILY",
        remind_before=dt.timedelta(minutes=15),
    )

    body = client.get(f"/tasks/{task.pk}/").content.decode()

    assert "Monday 4 March 2030, 14:45</" not in body  # never an unlabelled time
    assert 'Monday 4 March 2030, 14:45 <span class="muted">(Europe/Paris)</span>' in body
    assert "Times in Europe/Paris, your zone." in body
