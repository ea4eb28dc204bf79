"""The operators' admin: pages load, search and filters work, writes go through the services."""

import datetime as dt
from unittest import mock

import pytest
from django.contrib.auth import get_user_model

from tasks import services
from tasks.models import Category, Profile, Tag, Task
from tests.factories import make_category, make_tag, make_task

UTC = dt.UTC


@pytest.fixture
def alices_tasks(alice):
    work = make_category(alice, "Work")
    return {
        "milk": make_task(
            alice,
            title="Buy milk",
            description="semi-skimmed",
            priority="high",
            tags=["errands"],
            due_date=dt.datetime(2026, 12, 1, 9, tzinfo=UTC),
        ),
        "report": make_task(
            alice,
            title="Write report",
            priority="urgent",
            category=work,
            tags=["work"],
            due_date=dt.datetime(2027, 3, 1, 9, tzinfo=UTC),
            recurrence_type="weekly",
        ),
        "done": make_task(alice, title="Old chore", priority="low", completed=True),
    }


def changelist_titles(response) -> set[str]:
    assert response.status_code == 200
    return {str(obj) for obj in response.context["cl"].result_list}


def task_form(task: Task | None = None, **overrides) -> dict:
    """The admin task form's POST data: the task's current values, then ``overrides``."""
    data = {
        "title": "",
        "description": "",
        "priority": "medium",
        "due_date_0": "",
        "due_date_1": "",
        "timezone": "UTC",
        "category": "",
        "recurrence_rule": "",
        "recurrence_type": "none",
        "recurrence_interval": "1",
        "recurrence_mode": "schedule",
        "remind_at_0": "",
        "remind_at_1": "",
        "remind_before": "",
        "tag_names": "",
    }
    if task is not None:
        # The change page's read-only inlines (spawned instances, reminders) send their
        # management forms, as a browser does.
        for prefix in ("spawned", "deliveries"):
            data.update(
                {f"{prefix}-{key}": "0" for key in ("TOTAL_FORMS", "INITIAL_FORMS")},
                **{f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"},
            )
        data.update(
            title=task.title,
            description=task.description,
            priority=task.priority,
            timezone=task.timezone,
            category=task.category_id or "",
            recurrence_rule=task.recurrence_rule,
            recurrence_type=task.recurrence_type,
            recurrence_interval=str(task.recurrence_interval),
            recurrence_mode=task.recurrence_mode,
            tag_names=", ".join(t.name for t in task.tags.all()),
        )
        # The timezone default is a callable, so the form carries its initial value along.
        data["initial-timezone"] = task.timezone
        if task.completed:
            data["completed"] = "on"
        if task.due_date:
            local = task.due_date.astimezone(UTC)
            data["due_date_0"], data["due_date_1"] = f"{local:%Y-%m-%d}", f"{local:%H:%M:%S}"
    data.update(overrides)
    return data


# --- pages load ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["task", "category", "tag", "profile"])
def test_the_changelist_and_add_pages_load(admin_client, alices_tasks, model):
    assert admin_client.get(f"/admin/tasks/{model}/").status_code == 200
    assert admin_client.get(f"/admin/tasks/{model}/add/").status_code == 200


def test_the_change_pages_load(admin_client, alice, alices_tasks):
    pages = [
        f"/admin/tasks/task/{alices_tasks['report'].pk}/change/",
        f"/admin/tasks/category/{Category.objects.get(name='Work').pk}/change/",
        f"/admin/tasks/tag/{Tag.objects.get(name='work').pk}/change/",
        f"/admin/tasks/profile/{Profile.objects.get(user=alice).pk}/change/",
        f"/admin/auth/user/{alice.pk}/change/",
    ]

    for page in pages:
        assert admin_client.get(page).status_code == 200, page


def test_the_task_change_page_shows_the_tags_as_comma_separated_names(admin_client, alice):
    task = make_task(alice, tags=["home", "errands"])

    response = admin_client.get(f"/admin/tasks/task/{task.pk}/change/")

    assert response.context["adminform"].form["tag_names"].value() == "errands, home"


def test_the_task_changelist_shows_the_useful_columns(admin_client, alices_tasks):
    response = admin_client.get("/admin/tasks/task/")

    content = response.content.decode()
    for text in ("Buy milk", "alice", "High", "Work", "errands", "Repeats"):
        assert text in content


# --- search and filters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("milk", {"Buy milk"}),
        ("SKIMMED", {"Buy milk"}),
        ("errands", {"Buy milk"}),
        ("alice", {"Buy milk", "Write report", "Old chore"}),
        ("nothing", set()),
    ],
)
def test_task_search_looks_in_title_description_owner_and_tags(
    admin_client, alices_tasks, query, expected
):
    assert changelist_titles(admin_client.get(f"/admin/tasks/task/?q={query}")) == expected


def test_task_filters(admin_client, alices_tasks):
    work = Category.objects.get(name="Work")
    errands = Tag.objects.get(name="errands")
    cases = {
        "priority__exact=high": {"Buy milk"},
        "completed__exact=1": {"Old chore"},
        "completed__exact=0": {"Buy milk", "Write report"},
        "due_date__isnull=True": {"Old chore"},
        "due_date__gte=2026-12-01+00:00:00%2B00:00&due_date__lt=2026-12-02+00:00:00%2B00:00": {
            "Buy milk"
        },
        f"category__id__exact={work.pk}": {"Write report"},
        "category__isnull=True": {"Buy milk", "Old chore"},
        f"tags__id__exact={errands.pk}": {"Buy milk"},
        "tags__isnull=True": {"Old chore"},
        "recurrence_type__exact=weekly": {"Write report"},
        "recurrence_type__exact=none": {"Buy milk", "Old chore"},
        "due_date__year=2026": {"Buy milk"},
        "due_date__year=2027&due_date__month=3": {"Write report"},
    }

    for query, expected in cases.items():
        response = admin_client.get(f"/admin/tasks/task/?{query}")
        assert changelist_titles(response) == expected, query


def test_every_task_filter_choice_loads(admin_client, alices_tasks):
    changelist = admin_client.get("/admin/tasks/task/").context["cl"]
    queries = [
        choice["query_string"]
        for spec in changelist.filter_specs
        for choice in spec.choices(changelist)
    ]

    assert len(queries) > 15
    for query in queries:
        assert admin_client.get(f"/admin/tasks/task/{query}").status_code == 200, query


@pytest.mark.parametrize(
    ("model", "query", "expected"),
    [
        ("category", "q=work", {"Work"}),
        ("category", "q=bob", {"Home"}),
        ("tag", "q=err", {"errands"}),
        ("tag", "q=bob", {"bobs"}),
    ],
)
def test_category_and_tag_search(admin_client, alices_tasks, bob, model, query, expected):
    make_category(bob, "Home")
    make_tag(bob, "bobs")

    assert changelist_titles(admin_client.get(f"/admin/tasks/{model}/?{query}")) == expected


@pytest.mark.parametrize("model", ["category", "tag"])
def test_category_and_tag_filter_by_user(admin_client, alices_tasks, bob, model):
    make_category(bob, "Home")
    make_tag(bob, "bobs")

    response = admin_client.get(f"/admin/tasks/{model}/?user__id__exact={bob.pk}")

    assert changelist_titles(response) == ({"Home"} if model == "category" else {"bobs"})


def test_profile_search_and_filters(admin_client, alice, bob):
    services.profile_update(user=bob, data={"timezone": "Europe/Paris", "reminders_enabled": False})

    def users(query):
        response = admin_client.get(f"/admin/tasks/profile/?{query}")
        assert response.status_code == 200
        return {p.user.username for p in response.context["cl"].result_list}

    assert users("q=bob@example") == {"bob"}
    assert users("reminders_enabled__exact=0") == {"bob"}
    assert users("reminders_enabled__exact=1") == {"alice"}
    assert users("timezone=Europe/Paris") == {"bob"}


# --- actions ---------------------------------------------------------------------------------


def test_the_mark_complete_action_completes_through_the_service(admin_client, alices_tasks):
    selected = [alices_tasks["milk"].pk, alices_tasks["report"].pk]

    with mock.patch.object(services, "task_complete", wraps=services.task_complete) as spy:
        response = admin_client.post(
            "/admin/tasks/task/", {"action": "mark_complete", "_selected_action": selected}
        )

    assert response.status_code == 302
    assert spy.call_count == 2
    for task in Task.objects.filter(pk__in=selected):
        assert task.completed is True
        assert task.completed_at is not None


def test_the_reopen_action_reopens_through_the_service(admin_client, alices_tasks):
    done = alices_tasks["done"]

    with mock.patch.object(services, "task_reopen", wraps=services.task_reopen) as spy:
        admin_client.post("/admin/tasks/task/", {"action": "reopen", "_selected_action": [done.pk]})

    spy.assert_called_once()
    done.refresh_from_db()
    assert (done.completed, done.completed_at) == (False, None)


def test_mark_complete_leaves_an_already_completed_task_alone(admin_client, alices_tasks):
    done = alices_tasks["done"]
    stamp = Task.objects.get(pk=done.pk).completed_at

    admin_client.post(
        "/admin/tasks/task/", {"action": "mark_complete", "_selected_action": [done.pk]}
    )

    assert Task.objects.get(pk=done.pk).completed_at == stamp


# --- adding, editing and deleting tasks ------------------------------------------------------


def test_adding_a_task_in_the_admin_creates_it_with_its_tags(admin_client, alice):
    make_tag(alice, "Home")
    data = task_form(
        user=alice.pk,
        title="  From the admin ",
        priority="urgent",
        due_date_0="2026-12-01",
        due_date_1="09:00:00",
        tag_names="home, garden ,  ",
        timezone="Europe/Paris",
    )

    with mock.patch.object(services, "task_create", wraps=services.task_create) as spy:
        response = admin_client.post("/admin/tasks/task/add/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    spy.assert_called_once()
    task = Task.objects.get(user=alice)
    assert task.title == "From the admin"
    assert task.priority == "urgent"
    assert task.timezone == "Europe/Paris"
    assert sorted(t.name for t in task.tags.all()) == ["Home", "garden"]
    assert Tag.objects.filter(user=alice).count() == 2


def test_adding_a_completed_task_in_the_admin_sets_completed_at(admin_client, alice):
    admin_client.post(
        "/admin/tasks/task/add/", task_form(user=alice.pk, title="Done", completed="on")
    )

    assert Task.objects.get(user=alice).completed_at is not None


def test_editing_a_task_in_the_admin_changes_its_tags(admin_client, alice):
    task = make_task(alice, title="Tagged", tags=["old", "keep"])

    with mock.patch.object(services, "task_update", wraps=services.task_update) as spy:
        response = admin_client.post(
            f"/admin/tasks/task/{task.pk}/change/",
            task_form(task, tag_names="keep, New", title="Retitled"),
        )

    assert response.status_code == 302, response.context["adminform"].form.errors
    spy.assert_called_once()
    task.refresh_from_db()
    assert task.title == "Retitled"
    assert sorted(t.name for t in task.tags.all()) == ["New", "keep"]


def test_editing_a_task_in_the_admin_passes_only_the_changed_fields(admin_client, alice):
    task = make_task(alice, title="Same", priority="low", tags=["keep"])

    with mock.patch.object(services, "task_update", wraps=services.task_update) as spy:
        admin_client.post(f"/admin/tasks/task/{task.pk}/change/", task_form(task, priority="high"))

    assert spy.call_args.kwargs["data"] == {"priority": "high"}
    task.refresh_from_db()
    assert task.priority == "high"
    assert [t.name for t in task.tags.all()] == ["keep"]


def test_completing_a_task_in_the_admin_form_sets_completed_at(admin_client, alice):
    task = make_task(alice)

    admin_client.post(f"/admin/tasks/task/{task.pk}/change/", task_form(task, completed="on"))

    task.refresh_from_db()
    assert task.completed is True
    assert task.completed_at is not None


def test_an_invalid_task_in_the_admin_form_is_a_form_error(admin_client, alice, bob):
    task = make_task(alice, title="Keep")

    response = admin_client.post(
        f"/admin/tasks/task/{task.pk}/change/",
        task_form(task, title="   ", recurrence_rule="FREQ=SOMETIMES"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "title" in errors
    assert "recurrence_rule" in errors
    assert Task.objects.get(pk=task.pk).title == "Keep"


def test_adding_a_task_in_another_users_category_is_a_form_error(admin_client, alice, bob):
    bobs = make_category(bob, "Bob's")

    response = admin_client.post(
        "/admin/tasks/task/add/", task_form(user=alice.pk, title="x", category=bobs.pk)
    )

    assert response.status_code == 200
    assert "category" in response.context["adminform"].form.errors
    assert not Task.objects.exists()


def test_deleting_a_task_in_the_admin_goes_through_the_service(admin_client, alices_tasks):
    milk = alices_tasks["milk"]

    with mock.patch.object(services, "task_delete", wraps=services.task_delete) as spy:
        response = admin_client.post(f"/admin/tasks/task/{milk.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    spy.assert_called_once()
    assert not Task.objects.filter(pk=milk.pk).exists()


def test_bulk_deleting_tasks_in_the_admin_goes_through_the_service(admin_client, alices_tasks):
    selected = [t.pk for t in alices_tasks.values()]

    with mock.patch.object(services, "task_delete", wraps=services.task_delete) as spy:
        admin_client.post(
            "/admin/tasks/task/",
            {"action": "delete_selected", "_selected_action": selected, "post": "yes"},
        )

    assert spy.call_count == 3
    assert not Task.objects.exists()


# --- categories, tags, profiles --------------------------------------------------------------


def test_adding_a_category_in_the_admin(admin_client, alice):
    response = admin_client.post(
        "/admin/tasks/category/add/", {"user": alice.pk, "name": " Garden ", "color": "#00ff00"}
    )

    assert response.status_code == 302
    category = Category.objects.get(user=alice)
    assert (category.name, category.color) == ("Garden", "#00ff00")


def test_a_duplicate_category_in_the_admin_is_a_form_error(admin_client, alice):
    make_category(alice, "Work")

    response = admin_client.post(
        "/admin/tasks/category/add/", {"user": alice.pk, "name": "WORK", "color": "#3b82f6"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Category.objects.count() == 1


def test_editing_a_category_in_the_admin(admin_client, alice):
    work = make_category(alice, "Work")

    admin_client.post(
        f"/admin/tasks/category/{work.pk}/change/", {"name": "Job", "color": "#123456"}
    )

    work.refresh_from_db()
    assert (work.name, work.color) == ("Job", "#123456")


@pytest.mark.parametrize("model", ["category", "tag"])
def test_the_owner_of_a_category_or_tag_is_read_only_once_created(admin_client, alice, bob, model):
    obj = make_category(alice, "Work") if model == "category" else make_tag(alice, "work")

    form = admin_client.get(f"/admin/tasks/{model}/{obj.pk}/change/").context["adminform"].form
    response = admin_client.post(
        f"/admin/tasks/{model}/{obj.pk}/change/",
        {"user": bob.pk, "name": "Work", "color": "#3b82f6"},
    )

    assert "user" not in form.fields
    assert response.status_code == 302
    obj.refresh_from_db()
    assert (obj.user, obj.name) == (alice, "Work")


def test_deleting_a_category_in_the_admin_keeps_its_tasks(admin_client, alice):
    work = make_category(alice, "Work")
    task = make_task(alice, category=work)

    admin_client.post(f"/admin/tasks/category/{work.pk}/delete/", {"post": "yes"})

    assert not Category.objects.exists()
    assert Task.objects.get(pk=task.pk).category is None


def test_adding_renaming_and_deleting_a_tag_in_the_admin(admin_client, alice):
    admin_client.post("/admin/tasks/tag/add/", {"user": alice.pk, "name": "home"})
    tag = Tag.objects.get(user=alice)
    task = make_task(alice, tags=["home"])

    admin_client.post(f"/admin/tasks/tag/{tag.pk}/change/", {"name": "house"})
    assert [t.name for t in Task.objects.get(pk=task.pk).tags.all()] == ["house"]

    admin_client.post(f"/admin/tasks/tag/{tag.pk}/delete/", {"post": "yes"})
    assert not Tag.objects.exists()
    assert Task.objects.filter(pk=task.pk).exists()


def test_a_duplicate_tag_in_the_admin_is_a_form_error(admin_client, alice):
    make_tag(alice, "home")

    response = admin_client.post("/admin/tasks/tag/add/", {"user": alice.pk, "name": "Home"})

    assert response.status_code == 200
    assert Tag.objects.count() == 1


def test_editing_a_profile_in_the_admin(admin_client, alice):
    profile = Profile.objects.get(user=alice)

    response = admin_client.post(
        f"/admin/tasks/profile/{profile.pk}/change/",
        {"user": alice.pk, "timezone": "Asia/Tokyo"},
    )

    assert response.status_code == 302
    profile.refresh_from_db()
    assert (profile.timezone, profile.reminders_enabled) == ("Asia/Tokyo", False)


def test_an_unknown_timezone_in_the_profile_admin_is_a_form_error(admin_client, alice):
    profile = Profile.objects.get(user=alice)

    response = admin_client.post(
        f"/admin/tasks/profile/{profile.pk}/change/",
        {"user": alice.pk, "timezone": "Mars/Olympus", "reminders_enabled": "on"},
    )

    assert response.status_code == 200
    assert "timezone" in response.context["adminform"].form.errors


def test_the_admin_needs_a_staff_login(client, alice):
    response = client.get("/admin/tasks/task/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert get_user_model().objects.filter(is_staff=True).count() == 0


# --- time zones ------------------------------------------------------------------------------


def test_a_due_date_typed_in_the_admin_is_read_in_the_tasks_timezone(admin_client, alice):
    admin_client.post(
        "/admin/tasks/task/add/",
        task_form(
            user=alice.pk,
            title="Paris call",
            timezone="Europe/Paris",
            due_date_0="2026-12-01",
            due_date_1="09:00:00",
            remind_at_0="2026-12-01",
            remind_at_1="08:30:00",
        ),
    )

    task = Task.objects.get(user=alice)
    assert task.due_date == dt.datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert task.remind_at == dt.datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


def test_the_admin_change_form_shows_the_due_date_in_the_tasks_timezone(admin_client, alice):
    task = make_task(alice, due_date=dt.datetime(2026, 12, 1, 9, 0), timezone="America/New_York")

    form = admin_client.get(f"/admin/tasks/task/{task.pk}/change/").context["adminform"].form

    assert form["due_date"].value() == dt.datetime(2026, 12, 1, 9, 0)


def test_saving_the_admin_form_as_shown_keeps_the_due_date(admin_client, alice):
    task = make_task(alice, due_date=dt.datetime(2026, 12, 1, 9, 0), timezone="America/New_York")
    form = admin_client.get(f"/admin/tasks/task/{task.pk}/change/").context["adminform"].form
    shown = form["due_date"].value()
    data = task_form(task, due_date_0=f"{shown:%Y-%m-%d}", due_date_1=f"{shown:%H:%M:%S}")

    with mock.patch.object(services, "task_update", wraps=services.task_update) as spy:
        admin_client.post(f"/admin/tasks/task/{task.pk}/change/", data)

    assert spy.call_args.kwargs["data"] == {}
    assert Task.objects.get(pk=task.pk).due_date == dt.datetime(2026, 12, 1, 14, tzinfo=UTC)
