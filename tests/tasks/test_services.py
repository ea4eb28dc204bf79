"""The service layer: the one write path for tasks, categories and tags."""

import datetime as dt
import inspect
import zoneinfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks import services
from tasks.models import Category, Profile, Tag, Task
from tests.factories import UserFactory, make_category, make_tag, make_task
from tests.support.events import capture_events

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
UTC = dt.UTC


def tag_names(task: Task) -> list[str]:
    return sorted(t.name for t in Task.objects.get(pk=task.pk).tags.all())


# --- task_create -------------------------------------------------------------------------


def test_task_create_trims_the_title(alice):
    task = make_task(alice, title="  Buy milk \n")

    assert Task.objects.get(pk=task.pk).title == "Buy milk"


def test_task_create_rejects_a_whitespace_only_title(alice):
    with pytest.raises(ValidationError) as exc:
        make_task(alice, title="   ")

    assert "title" in exc.value.message_dict
    assert not Task.objects.exists()


def test_task_create_creates_unknown_tags_for_the_user(alice):
    task = make_task(alice, tags=["Home", "errands"])

    assert tag_names(task) == ["Home", "errands"]
    assert sorted(Tag.objects.filter(user=alice).values_list("name", flat=True)) == [
        "Home",
        "errands",
    ]


def test_task_create_treats_tag_names_case_insensitively(alice):
    make_tag(alice, "Home")

    task = make_task(alice, tags=["home", "HOME", " Home "])

    assert tag_names(task) == ["Home"]
    assert Tag.objects.filter(user=alice).count() == 1


def test_task_create_never_reuses_another_users_tag(alice, bob):
    bobs = make_tag(bob, "home")

    task = make_task(alice, tags=["home"])

    alices = Task.objects.get(pk=task.pk).tags.get()
    assert alices.user == alice
    assert alices.pk != bobs.pk


def test_task_create_reads_a_naive_due_date_in_the_tasks_timezone(alice):
    task = make_task(alice, due_date=dt.datetime(2026, 12, 1, 9, 0), timezone="America/New_York")

    stored = Task.objects.get(pk=task.pk).due_date
    assert stored == dt.datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def test_task_create_reads_a_naive_remind_at_in_the_tasks_timezone(alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2026, 12, 1, 9, 0),
        remind_at=dt.datetime(2026, 12, 1, 8, 0),
        timezone="America/New_York",
    )

    assert Task.objects.get(pk=task.pk).remind_at == dt.datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def test_task_create_keeps_an_aware_due_date_as_given(alice):
    due = dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    task = make_task(alice, due_date=due, timezone="America/New_York")

    assert Task.objects.get(pk=task.pk).due_date == due


def test_task_create_defaults_the_timezone_to_the_profiles(db):
    carol = UserFactory(username="carol", profile__timezone="Europe/Paris")

    task = make_task(carol, due_date=dt.datetime(2026, 7, 1, 9, 0))

    task.refresh_from_db()
    assert task.timezone == "Europe/Paris"
    assert task.due_date == dt.datetime(2026, 7, 1, 7, 0, tzinfo=UTC)


def test_task_create_defaults_the_profile_timezone_to_the_settings_time_zone(alice, settings):
    assert services.profile_get(user=alice).timezone == settings.TIME_ZONE
    assert make_task(alice).timezone == settings.TIME_ZONE


def test_reading_an_existing_profile_is_one_select_without_a_transaction(alice):
    """Every page view reads the profile: no savepoint for a read."""
    with CaptureQueriesContext(connection) as queries:
        profile = services.profile_get(user=alice)

    assert [query["sql"].split()[0] for query in queries] == ["SELECT"]
    assert profile.user_id == alice.pk


def test_the_profile_is_created_on_first_use_once(db):
    dave = User.objects.create(username="dave")
    Profile.objects.filter(user=dave).delete()  # as for a user from before profiles

    first = services.profile_get(user=dave)
    again = services.profile_get(user=dave)

    assert first.pk == again.pk
    assert Profile.objects.filter(user=dave).count() == 1
    assert first.timezone == settings.TIME_ZONE


def test_task_create_with_completed_sets_completed_at(alice):
    task = make_task(alice, completed=True)

    assert task.completed is True
    assert task.completed_at is not None


def test_task_create_rejects_another_users_category(alice, bob):
    with pytest.raises(ValidationError) as exc:
        make_task(alice, category=make_category(bob))

    assert "category" in exc.value.message_dict


def test_task_create_defaults(alice):
    task = make_task(alice)

    assert task.priority == "medium"
    assert task.completed is False
    assert task.completed_at is None
    assert task.recurrence_type == "none"
    assert task.recurrence_interval == 1
    assert task.reminder_sent is False


# --- task_update -------------------------------------------------------------------------


def test_task_update_returns_exactly_the_changed_fields(alice):
    task = make_task(alice, title="Old", priority="low", description="same")

    _, changes = services.task_update(
        task=task, data={"title": "New", "priority": "low", "description": "same"}
    )

    assert set(changes) == {"title"}
    assert (changes["title"].old, changes["title"].new) == ("Old", "New")


def test_task_update_returns_nothing_when_nothing_changed(alice):
    task = make_task(alice, title="Same", priority="high", tags=["Home"])
    before = Task.objects.get(pk=task.pk).updated_at

    _, changes = services.task_update(
        task=task, data={"title": "  Same ", "priority": "high", "tags": ["home"]}
    )

    assert changes == {}
    assert Task.objects.get(pk=task.pk).updated_at == before


def test_task_update_reports_tags_as_old_and_new_sorted_name_lists(alice):
    task = make_task(alice, tags=["work", "Home"])

    _, changes = services.task_update(task=task, data={"tags": ["Home", "urgent"]})

    assert set(changes) == {"tags"}
    assert changes["tags"].old == ["Home", "work"]
    assert changes["tags"].new == ["Home", "urgent"]
    assert tag_names(task) == ["Home", "urgent"]


def test_task_update_with_tags_bumps_updated_at(alice):
    task = make_task(alice, tags=["a"])
    before = Task.objects.get(pk=task.pk).updated_at

    services.task_update(task=task, data={"tags": ["b"]})

    assert Task.objects.get(pk=task.pk).updated_at > before


def test_task_update_completing_reports_completed_and_completed_at(alice):
    task = make_task(alice)

    task, changes = services.task_update(task=task, data={"completed": True})

    assert set(changes) == {"completed", "completed_at"}
    assert changes["completed"].old is False
    assert changes["completed"].new is True
    assert changes["completed_at"].old is None
    assert changes["completed_at"].new == task.completed_at is not None


def test_task_update_category_is_reported_by_id(alice):
    work = make_category(alice, "Work")
    task = make_task(alice)

    _, changes = services.task_update(task=task, data={"category": work})

    assert set(changes) == {"category"}
    assert (changes["category"].old, changes["category"].new) == (None, work.pk)


def test_task_update_reads_a_naive_due_date_in_the_new_timezone(alice):
    task = make_task(alice, timezone="UTC")

    task, changes = services.task_update(
        task=task,
        data={"timezone": "America/New_York", "due_date": dt.datetime(2026, 12, 1, 9, 0)},
    )

    assert task.due_date == dt.datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert set(changes) == {"timezone", "due_date"}


def test_task_update_rejects_an_unknown_field(alice):
    task = make_task(alice)

    with pytest.raises(ValidationError) as exc:
        services.task_update(task=task, data={"prority": "high"})

    assert "prority" in exc.value.message_dict


def test_task_update_validates_and_saves_nothing_on_error(alice):
    task = make_task(alice, title="Keep me")

    with pytest.raises(ValidationError) as exc:
        services.task_update(task=task, data={"title": "", "priority": "high"})

    assert "title" in exc.value.message_dict
    stored = Task.objects.get(pk=task.pk)
    assert (stored.title, stored.priority) == ("Keep me", "medium")


def test_task_update_moving_remind_at_rearms_the_reminder(alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        remind_at=dt.datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
    )
    Task.objects.filter(pk=task.pk).update(reminder_sent=True)
    task.refresh_from_db()

    task, changes = services.task_update(
        task=task, data={"remind_at": dt.datetime(2026, 12, 1, 7, 0, tzinfo=UTC)}
    )

    assert task.reminder_sent is False
    assert set(changes) == {"remind_at", "reminder_sent"}


# --- complete / reopen / delete ----------------------------------------------------------


def test_task_complete_sets_completed_at(alice):
    task = make_task(alice)

    services.task_complete(task=task)

    stored = Task.objects.get(pk=task.pk)
    assert stored.completed is True
    assert stored.completed_at is not None
    assert abs(stored.completed_at - timezone.now()) < dt.timedelta(minutes=1)


def test_task_complete_is_a_no_op_when_already_completed(alice):
    task = make_task(alice, completed=True)
    stamp = Task.objects.get(pk=task.pk).completed_at
    updated = Task.objects.get(pk=task.pk).updated_at

    services.task_complete(task=task)

    stored = Task.objects.get(pk=task.pk)
    assert stored.completed_at == stamp
    assert stored.updated_at == updated


def test_task_reopen_clears_completed_at(alice):
    task = make_task(alice, completed=True)

    services.task_reopen(task=task)

    stored = Task.objects.get(pk=task.pk)
    assert stored.completed is False
    assert stored.completed_at is None


def test_task_reopen_is_a_no_op_when_pending(alice):
    task = make_task(alice)
    updated = Task.objects.get(pk=task.pk).updated_at

    services.task_reopen(task=task)

    assert Task.objects.get(pk=task.pk).updated_at == updated


def test_task_delete_removes_the_task_but_keeps_its_tags(alice):
    task = make_task(alice, tags=["home"])

    services.task_delete(task=task)

    assert not Task.objects.filter(pk=task.pk).exists()
    assert Tag.objects.filter(user=alice, name="home").exists()


# --- categories --------------------------------------------------------------------------


def test_category_create_trims_the_name_and_defaults_the_colour(alice):
    category = services.category_create(user=alice, name="  Work ")

    assert (category.name, category.color) == ("Work", "#3b82f6")


def test_category_create_with_a_colour(alice):
    assert services.category_create(user=alice, name="Home", color="#16a34a").color == "#16a34a"


@pytest.mark.parametrize("name", ["Work", "work", "WORK", " work "])
def test_category_create_with_a_duplicate_name_is_a_validation_error_on_name(alice, name):
    make_category(alice, "Work")

    with pytest.raises(ValidationError) as exc:
        services.category_create(user=alice, name=name)

    assert "name" in exc.value.message_dict
    assert Category.objects.filter(user=alice).count() == 1


def test_two_users_may_have_a_category_with_the_same_name(alice, bob):
    make_category(alice, "Work")

    assert make_category(bob, "work").user == bob


def test_category_create_rejects_a_bad_colour(alice):
    with pytest.raises(ValidationError) as exc:
        services.category_create(user=alice, name="Work", color="red")

    assert "color" in exc.value.message_dict


def test_category_update_changes_name_and_colour(alice):
    category = make_category(alice, "Work")

    services.category_update(category=category, data={"name": "Job", "color": "#000000"})

    stored = Category.objects.get(pk=category.pk)
    assert (stored.name, stored.color) == ("Job", "#000000")


def test_category_update_may_change_the_case_of_its_own_name(alice):
    category = make_category(alice, "work")

    services.category_update(category=category, data={"name": "Work"})

    assert Category.objects.get(pk=category.pk).name == "Work"


def test_category_update_to_a_duplicate_name_is_a_validation_error_on_name(alice):
    make_category(alice, "Work")
    home = make_category(alice, "Home")

    with pytest.raises(ValidationError) as exc:
        services.category_update(category=home, data={"name": "WORK"})

    assert "name" in exc.value.message_dict
    assert Category.objects.get(pk=home.pk).name == "Home"


def test_category_delete_keeps_its_tasks_without_a_category(alice):
    work = make_category(alice, "Work")
    task = make_task(alice, category=work)

    services.category_delete(category=work)

    assert not Category.objects.filter(pk=work.pk).exists()
    assert Task.objects.get(pk=task.pk).category is None


# --- tags --------------------------------------------------------------------------------


def test_tag_create_trims_the_name(alice):
    assert services.tag_create(user=alice, name=" home ").name == "home"


@pytest.mark.parametrize("name", ["home", "Home", "HOME"])
def test_tag_create_with_a_duplicate_name_is_a_validation_error_on_name(alice, name):
    make_tag(alice, "home")

    with pytest.raises(ValidationError) as exc:
        services.tag_create(user=alice, name=name)

    assert "name" in exc.value.message_dict


def test_tag_names_are_unique_per_user_not_globally(alice, bob):
    make_tag(alice, "home")

    assert make_tag(bob, "home").user == bob


def test_tag_update_renames_the_tag_on_its_tasks(alice):
    home = make_tag(alice, "home")
    task = make_task(alice, tags=["home"])

    services.tag_update(tag=home, data={"name": "house"})

    assert tag_names(task) == ["house"]


def test_tag_update_to_a_duplicate_name_is_a_validation_error_on_name(alice):
    make_tag(alice, "home")
    work = make_tag(alice, "work")

    with pytest.raises(ValidationError) as exc:
        services.tag_update(tag=work, data={"name": "Home"})

    assert "name" in exc.value.message_dict


COMMA = "Tag names cannot contain commas."


def test_a_tag_name_with_a_comma_is_refused_on_name(alice):
    with pytest.raises(ValidationError) as exc:
        services.tag_create(user=alice, name="bills, urgent")

    assert exc.value.message_dict == {"name": [COMMA]}
    assert not Tag.objects.exists()


def test_renaming_a_tag_to_a_name_with_a_comma_is_refused_on_name(alice):
    home = make_tag(alice, "home")

    with pytest.raises(ValidationError) as exc:
        services.tag_update(tag=home, data={"name": "home,work"})

    assert exc.value.message_dict == {"name": [COMMA]}
    assert Tag.objects.get(pk=home.pk).name == "home"


def test_a_task_tag_name_with_a_comma_is_refused_on_tags(alice):
    with pytest.raises(ValidationError) as exc:
        services.task_create(user=alice, title="Pay", tags=["bills", "a,b"])

    assert exc.value.message_dict == {"tags": [COMMA]}
    assert not Task.objects.exists()
    assert not Tag.objects.exists()


def test_updating_a_tasks_tags_to_a_name_with_a_comma_is_refused_on_tags(alice):
    task = make_task(alice, tags=["bills"])

    with pytest.raises(ValidationError) as exc:
        services.task_update(task=task, data={"tags": ["a,b"]})

    assert exc.value.message_dict == {"tags": [COMMA]}
    assert tag_names(task) == ["bills"]


def test_tag_delete_removes_it_from_its_tasks(alice):
    task = make_task(alice, tags=["home", "work"])

    services.tag_delete(tag=Tag.objects.get(user=alice, name="home"))

    assert tag_names(task) == ["work"]
    assert Task.objects.filter(pk=task.pk).exists()


# --- reminders ---------------------------------------------------------------------------


def test_remind_before_derives_remind_at_from_the_due_date(alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        remind_before=dt.timedelta(minutes=30),
    )

    assert task.remind_at == dt.datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("due_day", "remind_day", "hours_between"),
    [
        # Clocks in New York go forward on 8 March 2026: the day before is 23 hours away...
        (dt.date(2026, 3, 8), dt.date(2026, 3, 7), 23),
        # ...and back on 1 November 2026: the day before is 25 hours away.
        (dt.date(2026, 11, 1), dt.date(2026, 10, 31), 25),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_remind_before_one_day_keeps_the_wall_clock_time_across_a_dst_change(
    alice, due_day, remind_day, hours_between
):
    task = make_task(
        alice,
        due_date=dt.datetime.combine(due_day, dt.time(9, 0)),
        timezone="America/New_York",
        remind_before=dt.timedelta(days=1),
    )

    stored = Task.objects.get(pk=task.pk)
    remind_local = stored.remind_at.astimezone(NEW_YORK)
    assert remind_local.replace(tzinfo=None) == dt.datetime.combine(remind_day, dt.time(9, 0))
    assert stored.due_date - stored.remind_at == dt.timedelta(hours=hours_between)


def test_moving_the_due_date_moves_a_remind_before_reminder(alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        remind_before=dt.timedelta(hours=1),
    )

    task, _ = services.task_update(
        task=task, data={"due_date": dt.datetime(2026, 12, 2, 9, 0, tzinfo=UTC)}
    )

    assert task.remind_at == dt.datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def test_remind_before_without_a_due_date_is_a_validation_error(alice):
    with pytest.raises(ValidationError) as exc:
        make_task(alice, remind_before=dt.timedelta(hours=1))

    assert "remind_before" in exc.value.message_dict


def test_remind_at_after_the_due_date_is_a_validation_error(alice):
    with pytest.raises(ValidationError) as exc:
        make_task(
            alice,
            due_date=dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
            remind_at=dt.datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        )

    assert "remind_at" in exc.value.message_dict


# --- profile -----------------------------------------------------------------------------


def test_profile_update_changes_the_timezone(alice):
    services.profile_update(user=alice, data={"timezone": "Asia/Tokyo"})

    assert services.profile_get(user=alice).timezone == "Asia/Tokyo"


def test_profile_update_rejects_an_unknown_timezone(alice):
    with pytest.raises(ValidationError) as exc:
        services.profile_update(user=alice, data={"timezone": "Mars/Olympus"})

    assert "timezone" in exc.value.message_dict


# --- case-insensitivity beyond ASCII -----------------------------------------------------

SQLITE = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


def test_category_names_are_unique_ignoring_case_beyond_ascii(alice):
    make_category(alice, "Économie")

    with pytest.raises(ValidationError) as exc:
        services.category_create(user=alice, name="économie")

    assert "name" in exc.value.message_dict


def test_tag_names_resolve_ignoring_case_beyond_ascii(alice):
    make_task(alice, tags=["École"])
    make_task(alice, tags=["école"])

    assert list(Tag.objects.filter(user=alice).values_list("name", flat=True)) == ["École"]


# --- concurrent edits ---------------------------------------------------------------------


def test_updates_through_stale_copies_of_a_task_do_not_undo_each_other(alice):
    task = services.task_create(user=alice, title="Original")
    first, second = Task.objects.get(pk=task.pk), Task.objects.get(pk=task.pk)

    services.task_update(task=first, data={"title": "Renamed"})
    services.task_update(task=second, data={"priority": "high"})

    stored = Task.objects.get(pk=task.pk)
    assert (stored.title, stored.priority) == ("Renamed", "high")


def test_editing_a_stale_copy_never_reopens_a_task_completed_meanwhile(alice):
    task = services.task_create(user=alice, title="Ship it")
    stale = Task.objects.get(pk=task.pk)
    services.task_complete(task=Task.objects.get(pk=task.pk))

    _, changes = services.task_update(task=stale, data={"title": "Ship it today"})

    stored = Task.objects.get(pk=task.pk)
    assert stored.completed is True
    assert set(changes) == {"title"}


def test_clearing_remind_at_also_clears_the_offset_it_came_from(alice):
    task = services.task_create(
        user=alice,
        title="Call",
        due_date=dt.datetime(2030, 1, 2, 9, tzinfo=dt.UTC),
        remind_before=dt.timedelta(hours=1),
    )
    assert task.remind_at is not None

    task, _ = services.task_update(task=task, data={"remind_at": None})

    assert (task.remind_at, task.remind_before) == (None, None)


# --- one unknown-field check ----------------------------------------------------------------


def test_the_service_and_the_api_name_an_unknown_field_in_the_same_words(alice, api):
    task = make_task(alice)

    with pytest.raises(ValidationError) as exc:
        services.task_update(task=task, data={"prority": "high"})
    response = api.patch(f"/api/tasks/{task.pk}/", {"prority": "high"}, format="json")

    assert exc.value.message_dict == {"prority": ["Unknown field."]}
    assert response.status_code == 400
    assert response.json() == exc.value.message_dict


# --- the safety net stays quiet for services, whichever they are ----------------------------

#: Public functions of tasks.services without @task_service, and why they need none: the
#: decorator silences the Task safety net for a service that emits its own event, and these
#: save no Task.
NO_TASK_SERVICE = {
    "api_token_mark_used": "one UPDATE of a token's last use, no event; on most requests none",
    "reject_unknown_fields": "writes nothing",
    "task_service": "the decorator itself",
    "task_snapshot": "writes nothing",
    "wall_clock_minus": "writes nothing",
    "profile_get": "saves a Profile at most, which has no event; read on every page view",
}


def test_every_public_service_is_declared_with_task_service():
    """A new writing service declared without ``@task_service`` would publish a second,
    safety-net event for its own saves: this fails first."""
    public = {
        name: function
        for name, function in inspect.getmembers(services, inspect.isfunction)
        if function.__module__ == services.__name__ and not name.startswith("_")
    }
    undeclared = [
        name
        for name, function in sorted(public.items())
        if not getattr(function, "is_task_service", False) and name not in NO_TASK_SERVICE
    ]

    assert undeclared == []
    assert set(public) >= set(NO_TASK_SERVICE)  # no stale exemption
    assert public["task_update"].is_task_service


def test_a_save_after_a_service_returned_or_failed_is_caught_by_the_safety_net(alice):
    task = make_task(alice, title="Before")
    with pytest.raises(ValidationError):
        services.task_update(task=task, data={"title": "   "})

    with capture_events() as captured:
        shell_task = Task.objects.get(pk=task.pk)
        shell_task.title = "After"
        shell_task.save()

    [event] = captured.events
    assert event.event_type == "task.updated"
    assert event.data["changes"] == {"title": {"old": "Before", "new": "After"}}


# --- the reminder-sent mirror -----------------------------------------------------------------


def reminding_task(user) -> Task:
    due = dt.datetime(2030, 1, 2, 9, tzinfo=UTC)
    return make_task(user, title="Call", due_date=due, remind_at=due - dt.timedelta(hours=1))


def test_a_sent_reminder_shows_on_the_task_and_tells_live_clients(alice, api):
    task = reminding_task(alice)

    with capture_events() as captured:
        assert services.task_reminder_sent(task_id=task.pk, remind_at=task.remind_at) is True

    [event] = captured.events
    assert event.event_type == "task.updated"
    assert event.topics == ["task-events", "task-updates"]
    assert event.data["changes"] == {"reminder_sent": {"old": False, "new": True}}
    assert api.get(f"/api/tasks/{task.pk}/").json()["reminder_sent"] is True


def test_a_reminder_sent_for_an_old_time_or_twice_changes_and_publishes_nothing(alice):
    task = reminding_task(alice)
    old_time = task.remind_at
    services.task_update(task=task, data={"remind_at": old_time + dt.timedelta(minutes=30)})

    with capture_events() as captured:
        assert services.task_reminder_sent(task_id=task.pk, remind_at=old_time) is False
        new_time = Task.objects.get(pk=task.pk).remind_at
        assert services.task_reminder_sent(task_id=task.pk, remind_at=new_time) is True
        assert services.task_reminder_sent(task_id=task.pk, remind_at=new_time) is False

    assert len(captured.events) == 1
