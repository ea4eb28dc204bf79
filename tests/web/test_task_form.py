"""The task form: create and edit on a page or in an htmx dialog, with a live repeat preview."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client

from tasks import services
from tasks.models import Tag, Task
from tasks.web.common import add_service_errors
from tasks.web.forms import TaskForm
from tests.factories import make_category, make_tag, make_task
from tests.web.html import Element, parse

NEW_YORK = "America/New_York"
NY = zoneinfo.ZoneInfo(NEW_YORK)
NEW = "/tasks/new/"
PREVIEW = "/tasks/form/recurrence-preview/"
HTMX = {"HTTP_HX_REQUEST": "true"}

# --- reading pages ------------------------------------------------------------------------


def value(root: Element, name: str):
    """What the form control ``name`` shows: a string, or a list for checkboxes."""
    if selects := root.find("select", name=name):
        chosen = [o for o in selects[0].find("option") if "selected" in o.attrs]
        return chosen[0].attrs.get("value") if chosen else None
    if areas := root.find("textarea", name=name):
        return areas[0].text
    inputs = root.find("input", name=name)
    assert inputs, f"no control named {name!r}"
    if inputs[0].attrs.get("type") == "checkbox":
        return [i.attrs["value"] for i in inputs if "checked" in i.attrs]
    if inputs[0].attrs.get("type") == "radio":
        return next((i.attrs["value"] for i in inputs if "checked" in i.attrs), None)
    return inputs[0].attrs.get("value")


def errors(root: Element, field_name: str) -> list[str]:
    """The error messages shown beside a field (its ``id_<name>_error`` list)."""
    box = root.by_id(f"id_{field_name}_error")
    return [li.text for li in box.find("li")] if box else []


def form_data(**overrides) -> dict:
    """A valid submission of the form with nothing but a title, changed by ``overrides``."""
    data = {
        "title": "Water the plants",
        "description": "",
        "priority": "medium",
        "due_date": "",
        "due_time": "",
        "timezone": NEW_YORK,
        "category": "",
        "tags": "",
        "repeat": "none",
        "interval": "1",
        "custom_rule": "",
        "end": "never",
        "end_count": "",
        "end_until": "",
        "mode": "schedule",
        "reminder": "none",
        "remind_at_date": "",
        "remind_at_time": "",
        "remind_before_amount": "",
        "remind_before_unit": "hours",
    }
    data.update(overrides)
    return data


def edit_url(task: Task) -> str:
    return f"/tasks/{task.pk}/edit/"


def flashes(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


# --- the pages ----------------------------------------------------------------------------

FIELDS = (
    "title",
    "description",
    "priority",
    "due_date",
    "due_time",
    "timezone",
    "category",
    "tags",
    "repeat",
    "interval",
    "weekdays",
    "custom_rule",
    "end",
    "end_count",
    "end_until",
    "mode",
    "reminder",
    "remind_at_date",
    "remind_at_time",
    "remind_before_amount",
    "remind_before_unit",
)


def test_the_new_task_page_has_every_field_with_a_label(signed_in):
    response = signed_in.get(NEW)

    assert response.status_code == 200
    root = parse(response)
    labelled = {label.attrs.get("for") for label in root.find("label")}
    for name in FIELDS:
        controls = [
            e
            for e in root.iter()
            if e.tag in ("input", "select", "textarea") and e.attrs.get("name") == name
        ]
        assert controls, name
        for control in controls:
            assert control.attrs.get("id") in labelled, f"{name} has no label"
    assert root.find("input", name="due_date")[0].attrs["type"] == "date"
    assert root.find("input", name="due_time")[0].attrs["type"] == "time"
    priorities = [i.attrs["value"] for i in root.find("input", name="priority")]
    assert priorities == ["low", "medium", "high", "urgent"]


def test_the_new_task_page_defaults_to_the_profile_time_zone(signed_in, alice):
    services.profile_update(user=alice, data={"timezone": "Europe/Paris"})

    root = parse(signed_in.get(NEW))

    assert value(root, "timezone") == "Europe/Paris"
    assert value(root, "priority") == "medium"
    assert value(root, "repeat") == "none"


def test_the_category_menu_lists_only_your_categories(signed_in, alice, bob):
    make_category(alice, "Errands")
    make_category(bob, "Bob's secret")

    root = parse(signed_in.get(NEW))

    options = [o.text for o in root.find("select", name="category")[0].find("option")]
    assert options == ["No category", "Errands"]


def test_your_tags_are_suggested(signed_in, alice, bob):
    make_tag(alice, "home")
    make_tag(bob, "bobs-tag")

    root = parse(signed_in.get(NEW))

    suggestions = [o.attrs["value"] for o in root.by_id("tag-names").find("option")]
    assert suggestions == ["home"]


def test_the_edit_page_shows_the_task_in_its_own_time_zone(signed_in, alice):
    task = make_task(
        alice,
        title="Call the bank",
        description="Ask about the fee",
        priority="high",
        due_date=dt.datetime(2030, 3, 4, 9, 0),
        timezone=NEW_YORK,
        category=make_category(alice, "Errands"),
        tags=["money", "Calls"],
        remind_at=dt.datetime(2030, 3, 4, 8, 15),
    )

    root = parse(signed_in.get(edit_url(task)))

    assert value(root, "title") == "Call the bank"
    assert value(root, "description") == "Ask about the fee"
    assert value(root, "priority") == "high"
    assert value(root, "due_date") == "2030-03-04"
    assert value(root, "due_time") == "09:00"  # not 14:00, the UTC time
    assert value(root, "timezone") == NEW_YORK
    assert value(root, "category") == str(task.category_id)
    assert value(root, "tags") == "Calls, money"
    assert value(root, "reminder") == "at"
    assert value(root, "remind_at_date") == "2030-03-04"
    assert value(root, "remind_at_time") == "08:15"
    assert f"in the task's time zone, {NEW_YORK}" in root.text


def test_the_edit_page_shows_a_reminder_offset_in_its_unit(signed_in, alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2030, 3, 4, 9, 0),
        timezone=NEW_YORK,
        remind_before=dt.timedelta(days=2),
    )

    root = parse(signed_in.get(edit_url(task)))

    assert value(root, "reminder") == "before"
    assert value(root, "remind_before_amount") == "2"
    assert value(root, "remind_before_unit") == "days"


@pytest.mark.parametrize(
    ("stored", "due", "shown"),
    [
        (
            {"recurrence_type": "weekly", "recurrence_interval": 2},
            dt.datetime(2030, 4, 9, 9),
            {"repeat": "weekly", "interval": "2", "weekdays": []},
        ),
        (
            {"recurrence_type": "monthly"},
            dt.datetime(2030, 4, 14, 9),
            {"repeat": "monthly_day", "interval": "1"},
        ),
        (
            {"recurrence_rule": "FREQ=WEEKLY;BYDAY=TH,MO"},
            dt.datetime(2030, 4, 8, 9),
            {"repeat": "weekly", "weekdays": ["MO", "TH"]},
        ),
        (
            {"recurrence_rule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"},
            dt.datetime(2030, 4, 8, 9),
            {"repeat": "weekdays"},
        ),
        (
            {"recurrence_rule": "FREQ=MONTHLY;BYDAY=2TU;COUNT=6"},
            dt.datetime(2030, 4, 9, 9),
            {"repeat": "monthly_weekday", "end": "count", "end_count": "6"},
        ),
        (
            {"recurrence_rule": "FREQ=DAILY;INTERVAL=3", "recurrence_mode": "completion"},
            dt.datetime(2030, 4, 9, 9),
            {"repeat": "daily", "interval": "3", "mode": "completion"},
        ),
        (
            {"recurrence_rule": "FREQ=MONTHLY;BYMONTHDAY=1,15"},
            dt.datetime(2030, 4, 1, 9),
            {"repeat": "custom", "custom_rule": "FREQ=MONTHLY;BYMONTHDAY=1,15"},
        ),
        (  # the second Tuesday's rule on a task due another day is not that preset
            {"recurrence_rule": "FREQ=MONTHLY;BYDAY=2TU"},
            dt.datetime(2030, 4, 10, 9),
            {"repeat": "custom", "custom_rule": "FREQ=MONTHLY;BYDAY=2TU"},
        ),
    ],
)
def test_the_edit_page_shows_a_stored_rule_as_its_preset(signed_in, alice, stored, due, shown):
    task = make_task(alice, due_date=due, timezone=NEW_YORK, **stored)

    root = parse(signed_in.get(edit_url(task)))

    assert {name: value(root, name) for name in shown} == shown


def test_an_until_date_is_shown_as_the_local_last_day(signed_in, alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2030, 4, 9, 9),
        timezone=NEW_YORK,
        recurrence_rule="FREQ=DAILY;UNTIL=20300701T035959Z",  # 30 June, 23:59:59 New York
    )

    root = parse(signed_in.get(edit_url(task)))

    assert (value(root, "repeat"), value(root, "end"), value(root, "end_until")) == (
        "daily",
        "until",
        "2030-06-30",
    )


# --- creating ------------------------------------------------------------------------------


def test_creating_a_task_saves_it_and_goes_to_its_page(signed_in, alice):
    response = signed_in.post(
        NEW,
        form_data(
            title="  File taxes ",
            description="Before the deadline",
            priority="urgent",
            due_date="2030-04-15",
            due_time="17:30",
        ),
    )

    task = Task.objects.get(user=alice)
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{task.pk}/"
    assert flashes(response) == ["Task created"]
    assert (task.title, task.description, task.priority) == (
        "File taxes",
        "Before the deadline",
        "urgent",
    )
    assert task.timezone == NEW_YORK
    assert task.due_date == dt.datetime(2030, 4, 15, 17, 30, tzinfo=NY)


def test_a_due_date_without_a_time_is_due_at_nine(signed_in, alice):
    signed_in.post(NEW, form_data(due_date="2030-04-15"))

    assert Task.objects.get(user=alice).due_date == dt.datetime(2030, 4, 15, 9, 0, tzinfo=NY)


def test_the_due_date_is_read_in_the_chosen_zone_not_the_profile_zone(signed_in, alice):
    services.profile_update(user=alice, data={"timezone": "Europe/Paris"})

    signed_in.post(NEW, form_data(due_date="2030-04-15", due_time="09:00", timezone="Asia/Tokyo"))

    task = Task.objects.get(user=alice)
    assert task.timezone == "Asia/Tokyo"
    assert task.due_date == dt.datetime(2030, 4, 15, 0, 0, tzinfo=dt.UTC)


def test_an_empty_time_zone_means_the_profile_zone(signed_in, alice):
    services.profile_update(user=alice, data={"timezone": "Europe/Paris"})

    signed_in.post(NEW, form_data(timezone=""))

    assert Task.objects.get(user=alice).timezone == "Europe/Paris"


def test_creating_goes_back_to_a_safe_next_page(signed_in):
    response = signed_in.post(NEW, form_data(next="/tasks/?view=today"))

    assert response["Location"] == "/tasks/?view=today"


def test_creating_ignores_a_next_page_on_another_site(signed_in, alice):
    response = signed_in.post(NEW, form_data(next="https://evil.example/"))

    assert response["Location"] == f"/tasks/{Task.objects.get(user=alice).pk}/"


def test_the_form_carries_a_next_page_of_this_site_only(signed_in):
    safe = parse(signed_in.get(NEW, {"next": "/tasks/?view=today"}))
    unsafe = parse(signed_in.get(NEW, {"next": "https://evil.example/"}))

    assert value(safe, "next") == "/tasks/?view=today"
    assert not unsafe.find("input", name="next")


def test_the_time_field_says_the_default_due_time(signed_in, settings):
    settings.DEFAULT_DUE_TIME = dt.time(8, 30)

    root = parse(signed_in.get(NEW))

    assert root.by_id("id_due_time_helptext").text == "Without a time: 08:30."


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_the_form_says_that_it_depends_on_htmx_for_caches(signed_in, alice, headers):
    """The same address answers a page or a fragment, so no cache may mix them up."""
    task = make_task(alice)

    for response in (
        signed_in.get(NEW, **headers),
        signed_in.get(edit_url(task), **headers),
        signed_in.post(NEW, form_data(title=""), **headers),
    ):
        assert "HX-Request" in response["Vary"]


def test_creating_from_htmx_redirects_the_browser(signed_in, alice):
    response = signed_in.post(NEW, form_data(next="/tasks/"), **HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/tasks/"
    assert Task.objects.filter(user=alice).count() == 1


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"repeat": "daily"}, "FREQ=DAILY"),
        ({"repeat": "weekdays"}, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        ({"repeat": "weekly", "weekdays": ["TH", "MO"]}, "FREQ=WEEKLY;BYDAY=MO,TH"),
        ({"repeat": "weekly"}, "FREQ=WEEKLY"),
        ({"repeat": "monthly_day", "due_date": "2030-04-14"}, "FREQ=MONTHLY;BYMONTHDAY=14"),
        ({"repeat": "monthly_weekday", "due_date": "2030-04-09"}, "FREQ=MONTHLY;BYDAY=2TU"),
        ({"repeat": "monthly_weekday", "due_date": "2030-04-26"}, "FREQ=MONTHLY;BYDAY=-1FR"),
        ({"repeat": "monthly_weekday", "due_date": "2030-04-29"}, "FREQ=MONTHLY;BYDAY=-1MO"),
        ({"repeat": "yearly"}, "FREQ=YEARLY"),
        (
            {"repeat": "custom", "custom_rule": "RRULE:freq=monthly;bymonthday=-1"},
            "FREQ=MONTHLY;BYMONTHDAY=-1",
        ),
        (
            {"repeat": "weekly", "interval": "2", "weekdays": ["MO"]},
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO",
        ),
        ({"repeat": "daily", "end": "count", "end_count": "10"}, "FREQ=DAILY;COUNT=10"),
        (  # the end of 30 June in New York is 03:59:59 UTC on 1 July
            {"repeat": "daily", "end": "until", "end_until": "2030-06-30"},
            "FREQ=DAILY;UNTIL=20300701T035959Z",
        ),
    ],
)
def test_creating_with_a_repeat_option_stores_its_rule(signed_in, alice, fields, rule):
    fields.setdefault("due_date", "2030-04-08")

    response = signed_in.post(NEW, form_data(**fields))

    assert response.status_code == 302, errors(parse(response), "repeat")
    task = Task.objects.get(user=alice)
    assert (task.recurrence_rule, task.recurrence_type) == (rule, "none")
    assert task.series is not None


def test_repeating_after_completion_is_stored_as_the_mode(signed_in, alice):
    signed_in.post(NEW, form_data(due_date="2030-04-08", repeat="daily", mode="completion"))

    assert Task.objects.get(user=alice).recurrence_mode == "completion"


def test_a_task_that_does_not_repeat_has_no_rule(signed_in, alice):
    signed_in.post(NEW, form_data(due_date="2030-04-08", repeat="none", weekdays=["MO"]))

    task = Task.objects.get(user=alice)
    assert (task.recurrence_rule, task.has_recurrence) == ("", False)


def test_a_reminder_before_the_due_date(signed_in, alice):
    signed_in.post(
        NEW,
        form_data(
            due_date="2030-04-08",
            due_time="09:00",
            reminder="before",
            remind_before_amount="1",
            remind_before_unit="hours",
        ),
    )

    task = Task.objects.get(user=alice)
    assert task.remind_before == dt.timedelta(hours=1)
    assert task.remind_at == dt.datetime(2030, 4, 8, 8, 0, tzinfo=NY)


def test_a_reminder_at_a_time_in_the_tasks_zone(signed_in, alice):
    signed_in.post(
        NEW,
        form_data(
            due_date="2030-04-08",
            due_time="09:00",
            reminder="at",
            remind_at_date="2030-04-07",
            remind_at_time="18:45",
        ),
    )

    task = Task.objects.get(user=alice)
    assert task.remind_at == dt.datetime(2030, 4, 7, 18, 45, tzinfo=NY)
    assert task.remind_before is None


def test_typed_tags_are_your_tags_found_or_created(signed_in, alice, bob):
    work = make_tag(alice, "work")
    make_tag(bob, "home")

    signed_in.post(NEW, form_data(tags="Work, home, , work"))

    task = Task.objects.get(user=alice)
    assert sorted(task.tags.values_list("pk", flat=True)) == sorted(
        [work.pk, Tag.objects.get(user=alice, name="home").pk]
    )
    assert Tag.objects.filter(user=bob).count() == 1


def test_commas_in_the_tags_field_separate_names_so_no_tag_name_has_one(signed_in, alice):
    response = signed_in.post(NEW, form_data(tags="bills,urgent ,, home"))

    assert response.status_code == 302
    assert Task.objects.get(user=alice).tag_names() == ["bills", "home", "urgent"]
    assert not Tag.objects.filter(name__contains=",").exists()


def test_a_category_of_your_own(signed_in, alice):
    errands = make_category(alice, "Errands")

    signed_in.post(NEW, form_data(category=str(errands.pk)))

    assert Task.objects.get(user=alice).category == errands


# --- errors beside the field, in the API's words ------------------------------------------


def api_errors(api, payload: dict) -> dict:
    response = api.post("/api/tasks/", {"title": "Via the API", **payload}, format="json")
    assert response.status_code == 400
    return response.json()


@pytest.mark.parametrize(
    ("api_payload", "api_field", "form_fields", "form_field"),
    [
        ({"title": ""}, "title", {"title": ""}, "title"),
        ({"title": "   "}, "title", {"title": "   "}, "title"),
        ({"title": "x" * 256}, "title", {"title": "x" * 256}, "title"),
        (
            {"recurrence_rule": "FREQ=WEEKLY;BYDAY=XX"},
            "recurrence_rule",
            {"repeat": "custom", "custom_rule": "FREQ=WEEKLY;BYDAY=XX"},
            "custom_rule",
        ),
        (
            {"recurrence_rule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"},
            "recurrence_rule",
            {"repeat": "custom", "custom_rule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"},
            "custom_rule",
        ),
        (
            {"due_date": "2030-04-08T09:00:00", "remind_at": "2030-04-08T10:00:00"},
            "remind_at",
            {
                "due_date": "2030-04-08",
                "due_time": "09:00",
                "reminder": "at",
                "remind_at_date": "2030-04-08",
                "remind_at_time": "10:00",
            },
            "remind_at_date",
        ),
        (
            {"remind_before": "PT1H"},
            "remind_before",
            {"reminder": "before", "remind_before_amount": "1"},
            "remind_before_amount",
        ),
        ({"timezone": "Mars/Olympus"}, "timezone", {"timezone": "Mars/Olympus"}, "timezone"),
        ({"priority": "extreme"}, "priority", {"priority": "extreme"}, "priority"),
        (
            {"due_date": "0999-01-01T09:00:00"},
            "due_date",
            {"due_date": "0999-01-01"},
            "due_date",
        ),
    ],
)
def test_an_error_is_shown_beside_its_field_in_the_apis_words(
    signed_in, api, alice, api_payload, api_field, form_fields, form_field
):
    expected = api_errors(api, api_payload)[api_field]
    Task.objects.all().delete()

    response = signed_in.post(NEW, form_data(**form_fields))

    assert response.status_code == 400
    root = parse(response)
    assert errors(root, form_field) == expected
    assert "Please correct the fields marked below." in root.text
    assert not Task.objects.filter(user=alice).exists()


def test_an_error_is_tied_to_its_field_for_assistive_technology(signed_in):
    root = parse(signed_in.post(NEW, form_data(title="")))

    title = root.by_id("id_title")
    assert title.attrs["aria-invalid"] == "true"
    assert "id_title_error" in title.attrs["aria-describedby"].split()
    assert root.find("div", role="alert")


def test_another_users_category_is_not_found_in_the_apis_words(signed_in, api, alice, bob):
    theirs = make_category(bob, "Bob's")
    expected = api_errors(api, {"category": theirs.pk})["category"]

    response = signed_in.post(NEW, form_data(category=str(theirs.pk)))

    assert response.status_code == 400
    assert errors(parse(response), "category") == expected == [f"Category {theirs.pk} not found."]


def test_a_too_long_tag_is_reported_beside_the_tags(signed_in, alice):
    response = signed_in.post(NEW, form_data(tags="ok, " + "t" * 51))

    assert response.status_code == 400
    assert errors(parse(response), "tags") == [f"Tag '{'t' * 20}…' is longer than 50 characters."]
    assert not Tag.objects.filter(user=alice).exists()


def test_service_errors_about_fields_the_form_lacks_go_to_the_top(alice):
    form = TaskForm(form_data(), user=alice)
    assert form.is_valid()

    add_service_errors(
        form,
        ValidationError({"completed": "Odd.", "__all__": "Whole.", "recurrence_type": "Both."}),
        form.service_field_map(),
    )
    add_service_errors(form, ValidationError("Not a field."), form.service_field_map())

    assert form.non_field_errors() == ["Odd.", "Whole.", "Not a field."]
    assert form.errors["repeat"] == ["Both."]


def test_an_invalid_rule_says_why(signed_in):
    response = signed_in.post(NEW, form_data(repeat="custom", custom_rule="BYDAY=MO"))

    assert errors(parse(response), "custom_rule") == ["FREQ is required (e.g. FREQ=WEEKLY)."]


def test_the_nth_weekday_needs_a_due_date(signed_in, alice):
    response = signed_in.post(NEW, form_data(repeat="monthly_weekday"))

    assert errors(parse(response), "repeat") == [
        "Set a due date: the weekday of the month comes from it."
    ]


def test_an_end_after_a_number_of_times_needs_the_number(signed_in):
    response = signed_in.post(NEW, form_data(repeat="daily", end="count", end_count=""))

    assert errors(parse(response), "end_count") == ["Enter how many times."]


def test_a_time_without_a_date_is_an_error(signed_in):
    response = signed_in.post(NEW, form_data(due_time="09:00"))

    assert errors(parse(response), "due_date") == ["Enter a date for this time."]


def test_the_form_keeps_what_was_typed_after_an_error(signed_in):
    response = signed_in.post(
        NEW,
        form_data(title="", description="Keep me", tags="a, b", repeat="weekly", weekdays=["FR"]),
    )

    root = parse(response)
    assert (value(root, "description"), value(root, "tags"), value(root, "weekdays")) == (
        "Keep me",
        "a, b",
        ["FR"],
    )


def test_an_htmx_post_with_errors_gets_the_form_alone_with_a_200(signed_in, alice):
    response = signed_in.post(NEW, form_data(title="", dialog="1"), **HTMX)

    assert response.status_code == 200  # htmx 2 does not swap a 4xx
    body = response.content.decode()
    assert "<html" not in body
    assert errors(parse(response), "title") == ["This field may not be blank."]
    assert 'id="dialog-title"' in body
    assert not Task.objects.filter(user=alice).exists()


# --- editing ------------------------------------------------------------------------------


def submitted_values(root: Element) -> dict:
    """The edit form as the browser would submit it, untouched."""
    data = {}
    for name in FIELDS:
        shown = value(root, name)
        if shown is not None:
            data[name] = shown
    return data


def test_saving_an_edit_changes_the_task(signed_in, alice):
    task = make_task(alice, title="Old", due_date=dt.datetime(2030, 4, 8, 9), timezone=NEW_YORK)
    data = submitted_values(parse(signed_in.get(edit_url(task))))

    response = signed_in.post(edit_url(task), {**data, "title": "New", "due_time": "10:30"})

    task.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{task.pk}/"
    assert flashes(response) == ["Task saved"]
    assert task.title == "New"
    assert task.due_date == dt.datetime(2030, 4, 8, 10, 30, tzinfo=NY)


def test_saving_an_untouched_form_changes_nothing(signed_in, alice):
    task = make_task(
        alice,
        title="Stand-up",
        due_date=dt.datetime(2030, 4, 8, 9, 0, 30),  # seconds the form does not show
        timezone=NEW_YORK,
        recurrence_type="weekly",
        recurrence_interval=2,
        remind_before=dt.timedelta(minutes=10),
        tags=["work"],
    )
    before = Task.objects.get(pk=task.pk)
    data = submitted_values(parse(signed_in.get(edit_url(task))))

    response = signed_in.post(edit_url(task), data)

    after = Task.objects.get(pk=task.pk)
    assert response.status_code == 302
    for name in (
        "due_date",
        "recurrence_rule",
        "recurrence_type",
        "recurrence_interval",
        "series_id",
        "remind_at",
        "remind_before",
        "updated_at",
    ):
        assert getattr(after, name) == getattr(before, name), name


def test_changing_the_repeat_of_a_preset_task_stores_a_rule(signed_in, alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2030, 4, 8, 9),
        timezone=NEW_YORK,
        recurrence_type="weekly",
        recurrence_interval=2,
    )
    data = submitted_values(parse(signed_in.get(edit_url(task))))

    signed_in.post(edit_url(task), {**data, "weekdays": ["MO", "WE"]})

    task.refresh_from_db()
    assert (task.recurrence_rule, task.recurrence_type, task.recurrence_interval) == (
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
        "none",
        1,
    )


def test_stopping_a_repeat_clears_the_rule(signed_in, alice):
    task = make_task(
        alice, due_date=dt.datetime(2030, 4, 8, 9), timezone=NEW_YORK, recurrence_rule="FREQ=DAILY"
    )
    data = submitted_values(parse(signed_in.get(edit_url(task))))

    signed_in.post(edit_url(task), {**data, "repeat": "none"})

    task.refresh_from_db()
    assert (task.recurrence_rule, task.has_recurrence) == ("", False)
    assert task.series.ended


def test_moving_the_due_date_moves_a_monthly_on_the_day_rule(signed_in, alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2030, 4, 14, 9),
        timezone=NEW_YORK,
        recurrence_rule="FREQ=MONTHLY;BYMONTHDAY=14",
    )
    data = submitted_values(parse(signed_in.get(edit_url(task))))

    signed_in.post(edit_url(task), {**data, "due_date": "2030-04-20"})

    task.refresh_from_db()
    assert task.recurrence_rule == "FREQ=MONTHLY;BYMONTHDAY=20"


def test_a_new_time_zone_keeps_the_wall_clock_times_shown(signed_in, alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2030, 4, 8, 9),
        timezone=NEW_YORK,
        remind_at=dt.datetime(2030, 4, 8, 8),
    )
    data = submitted_values(parse(signed_in.get(edit_url(task))))

    signed_in.post(edit_url(task), {**data, "timezone": "Europe/London"})

    task.refresh_from_db()
    london = zoneinfo.ZoneInfo("Europe/London")
    assert task.timezone == "Europe/London"
    assert task.due_date == dt.datetime(2030, 4, 8, 9, tzinfo=london)
    assert task.remind_at == dt.datetime(2030, 4, 8, 8, tzinfo=london)


def test_switching_the_reminder_off(signed_in, alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2030, 4, 8, 9),
        timezone=NEW_YORK,
        remind_before=dt.timedelta(hours=1),
    )
    data = submitted_values(parse(signed_in.get(edit_url(task))))

    signed_in.post(edit_url(task), {**data, "reminder": "none"})

    task.refresh_from_db()
    assert (task.remind_at, task.remind_before) == (None, None)


def test_clearing_the_due_date_of_a_task_reminded_before_it_is_an_error(signed_in, alice):
    task = make_task(
        alice,
        due_date=dt.datetime(2030, 4, 8, 9),
        timezone=NEW_YORK,
        remind_before=dt.timedelta(hours=1),
    )
    data = submitted_values(parse(signed_in.get(edit_url(task))))

    response = signed_in.post(edit_url(task), {**data, "due_date": "", "due_time": ""})

    assert response.status_code == 400
    assert errors(parse(response), "remind_before_amount") == [
        "A reminder offset needs a due date."
    ]
    task.refresh_from_db()
    assert task.due_date is not None


# --- the dialog ---------------------------------------------------------------------------


def test_htmx_asking_for_the_form_gets_it_alone_for_the_dialog(signed_in, alice):
    task = make_task(alice, title="Call mum")

    response = signed_in.get(
        edit_url(task), HTTP_HX_CURRENT_URL="http://testserver/tasks/?view=today", **HTMX
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="sidebar"' not in body
    root = parse(response)
    assert root.by_id("dialog-title").text == "Edit task"
    assert root.find("button", type="button", **{"data-close-dialog": None})
    assert value(root, "title") == "Call mum"
    assert value(root, "dialog") == "1"
    assert value(root, "next") == "/tasks/?view=today"


def test_the_full_page_has_no_dialog_controls(signed_in):
    root = parse(signed_in.get(NEW))

    assert root.by_id("dialog-title") is None
    assert not root.find("input", name="dialog")


# --- the live preview ---------------------------------------------------------------------


def preview_dates(response) -> list[str]:
    """The dates the repeat preview lists (the preview alone, or inside the form)."""
    root = parse(response)
    box = root.by_id("recurrence-preview") or root
    return [li.text for li in box.find("li")]


def test_the_preview_describes_the_rule_and_lists_five_dates_across_a_dst_change(signed_in):
    response = signed_in.post(
        PREVIEW,
        form_data(repeat="weekly", due_date="1997-10-21", due_time="09:00", timezone=NEW_YORK),
    )

    assert response.status_code == 200
    assert "Repeats every week" in parse(response).text
    assert preview_dates(response) == [
        "Tue 21 Oct 1997, 09:00 EDT",
        "Tue 28 Oct 1997, 09:00 EST",  # the clocks went back on the 26th: still 09:00
        "Tue 4 Nov 1997, 09:00 EST",
        "Tue 11 Nov 1997, 09:00 EST",
        "Tue 18 Nov 1997, 09:00 EST",
    ]


def test_the_preview_lists_the_same_dates_as_the_api(signed_in, api):
    fields = {
        "repeat": "monthly_weekday",
        "due_date": "2030-01-31",
        "due_time": "18:00",
        "timezone": "Europe/Paris",
    }
    from_api = api.post(
        "/api/recurrence/preview/",
        {
            "rule": "FREQ=MONTHLY;BYDAY=-1TH",
            "due_date": "2030-01-31T18:00:00",
            "timezone": "Europe/Paris",
        },
        format="json",
    ).json()

    response = signed_in.post(PREVIEW, form_data(**fields))

    paris = zoneinfo.ZoneInfo("Europe/Paris")
    expected = [
        dt.datetime.fromisoformat(when).astimezone(paris).strftime("%a %-d %b %Y, %H:%M %Z")
        for when in from_api["occurrences"]
    ]
    assert preview_dates(response) == expected
    assert f"Repeats {from_api['description']}" in parse(response).text


def test_the_preview_works_with_get_too(signed_in):
    response = signed_in.get(
        PREVIEW, form_data(repeat="daily", due_date="2030-04-08", end="count", end_count="2")
    )

    assert preview_dates(response) == ["Mon 8 Apr 2030, 09:00 EDT", "Tue 9 Apr 2030, 09:00 EDT"]
    assert "Then the series ends." in parse(response).text


def test_the_preview_says_why_a_rule_is_invalid(signed_in):
    response = signed_in.post(
        PREVIEW, form_data(repeat="custom", custom_rule="FREQ=WEEKLY;COUNT=0")
    )

    assert "COUNT must be a whole number from 1 to 10000." in parse(response).text
    assert preview_dates(response) == []


def test_the_preview_of_a_task_that_does_not_repeat(signed_in):
    response = signed_in.post(PREVIEW, form_data())

    assert "Does not repeat." in parse(response).text


def test_the_preview_without_a_due_date_starts_now(signed_in):
    response = signed_in.post(PREVIEW, form_data(repeat="daily"))

    assert len(preview_dates(response)) == 5
    assert "No due date yet" in parse(response).text


def test_the_form_asks_for_the_preview_live_with_htmx(signed_in):
    root = parse(signed_in.get(NEW))

    box = root.by_id("recurrence-preview")
    assert box.attrs["hx-post"] == PREVIEW
    assert box.attrs["hx-include"] == "closest form"
    assert box.attrs["hx-trigger"].startswith("change from:closest form, input delay:300ms")


def test_the_preview_button_shows_the_dates_without_saving(signed_in, alice):
    response = signed_in.post(
        NEW, form_data(title="", preview="1", repeat="daily", due_date="2030-04-08")
    )

    assert response.status_code == 200
    root = parse(response)
    assert errors(root, "title") == []  # a preview is not a save
    assert preview_dates(response)[0] == "Mon 8 Apr 2030, 09:00 EDT"
    assert not Task.objects.filter(user=alice).exists()


def test_the_edit_page_previews_the_stored_rule(signed_in, alice):
    task = make_task(
        alice, due_date=dt.datetime(2030, 4, 8, 9), timezone=NEW_YORK, recurrence_type="daily"
    )

    response = signed_in.get(edit_url(task))

    assert "Repeats every day" in parse(response).text
    assert preview_dates(response)[:2] == ["Mon 8 Apr 2030, 09:00 EDT", "Tue 9 Apr 2030, 09:00 EDT"]


# --- who may use it -----------------------------------------------------------------------


def test_another_users_task_cannot_be_edited(client, alice, bob):
    task = make_task(alice, title="Alice's")
    client.force_login(bob)

    assert client.get(edit_url(task)).status_code == 404
    assert client.post(edit_url(task), form_data(title="Bob was here")).status_code == 404
    task.refresh_from_db()
    assert task.title == "Alice's"


def test_a_missing_task_is_a_404(signed_in):
    assert signed_in.get("/tasks/999999/edit/").status_code == 404


def test_posting_without_a_csrf_token_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(NEW, form_data())

    assert response.status_code == 403
    assert not Task.objects.filter(user=alice).exists()


@pytest.mark.parametrize("url", [NEW, "/tasks/1/edit/", PREVIEW])
def test_anonymous_visitors_are_sent_to_log_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_edit_page_takes_a_fixed_number_of_queries(signed_in, alice, django_assert_num_queries):
    for name in ("Work", "Home", "Errands"):
        make_category(alice, name)
    task = make_task(
        alice,
        tags=["a", "b", "c"],
        recurrence_rule="FREQ=DAILY",
        due_date=dt.datetime(2030, 4, 8, 9),
    )
    for name in ("d", "e", "f"):
        make_tag(alice, name)

    with django_assert_num_queries(12):  # 11, and the live-updates position of the sidebar
        response = signed_in.get(edit_url(task))

    assert response.status_code == 200
