"""The iCal feed at /feeds/<secret>/tasks.ics, its secret URL in the API and on the settings
page: what a subscribed calendar app reads, parsed and expanded by independent libraries."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import icalendar
import pytest
import recurring_ical_events
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tasks import selectors, services
from tasks.models import Task
from tests.factories import make_category, make_tag, make_task
from tests.recurrence.helpers import complete_and_relay

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"


def local(stamp: str, tz_name: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp).replace(tzinfo=zoneinfo.ZoneInfo(tz_name))


@pytest.fixture
def secret(alice) -> str:
    return services.feed_token_create(user=alice)[1]


def get_feed(secret: str, **headers_and_params):
    params = {k: v for k, v in headers_and_params.items() if not k.startswith("HTTP_")}
    headers = {k: v for k, v in headers_and_params.items() if k.startswith("HTTP_")}
    return Client().get(f"/feeds/{secret}/tasks.ics", params, **headers)


def parsed(response) -> icalendar.Calendar:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return icalendar.Calendar.from_ical(response.content)


def components(calendar: icalendar.Calendar, name: str = "VTODO") -> list:
    return list(calendar.walk(name))


def by_summary(calendar: icalendar.Calendar, name: str = "VTODO") -> dict:
    return {str(c["SUMMARY"]): c for c in components(calendar, name)}


# --- validity ---------------------------------------------------------------------------------


def test_the_feed_is_a_valid_calendar_with_a_vtimezone_for_every_zone_it_uses(alice, secret):
    make_task(alice, title="Paris", due_date=local("2026-03-20T10:00", PARIS), timezone=PARIS)
    make_task(alice, title="NY", due_date=local("2026-11-02T09:00", NEW_YORK), timezone=NEW_YORK)
    make_task(alice, title="Undated")

    calendar = parsed(get_feed(secret))

    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"] == "-//Tideline//Tasks feed//EN"
    todos = components(calendar)
    assert len(todos) == 3
    for todo in todos:  # RFC 5545 3.6.2: UID and DTSTAMP are required, once
        assert todo["UID"] and isinstance(todo["DTSTAMP"].dt, dt.datetime)
        assert todo["DTSTAMP"].dt.tzinfo is not None
    used = {
        todo[prop].params["TZID"] for todo in todos for prop in ("DTSTART", "DUE") if prop in todo
    }
    defined = {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")}
    assert used == {PARIS, NEW_YORK}
    assert used <= defined
    raw = calendar.to_ical()
    assert raw.index(b"BEGIN:VTIMEZONE") < raw.index(b"BEGIN:VTODO")


def test_a_task_becomes_a_vtodo_with_every_property_a_calendar_shows(alice, secret):
    work = make_category(alice, name="Work")
    make_tag(alice, name="home")
    make_tag(alice, name="bills")
    task = make_task(
        alice,
        title="Pay rent",
        description="Transfer to the landlord",
        priority="urgent",
        category=work,
        tags=["home", "bills"],
        due_date=local("2026-07-01T09:00", PARIS),
        timezone=PARIS,
        remind_before=dt.timedelta(minutes=30),
    )

    todo = by_summary(parsed(get_feed(secret)))["Pay rent"]

    assert str(todo["UID"]) == f"task-{task.pk}@tideline"
    assert str(todo["DESCRIPTION"]) == "Transfer to the landlord"
    assert todo["PRIORITY"] == 1
    assert [str(c) for c in todo["CATEGORIES"].cats] == ["Work", "bills", "home"]
    assert str(todo["URL"]) == f"http://testserver/tasks/{task.pk}/"
    assert str(todo["STATUS"]) == "NEEDS-ACTION"
    assert todo["DTSTART"].dt == todo["DUE"].dt == local("2026-07-01T09:00", PARIS)
    assert todo["DUE"].params["TZID"] == PARIS
    assert todo["LAST-MODIFIED"].dt == task.updated_at.replace(microsecond=0)
    assert isinstance(todo["SEQUENCE"], int) and todo["SEQUENCE"] > 0
    assert "RRULE" not in todo
    (alarm,) = todo.walk("VALARM")
    assert str(alarm["ACTION"]) == "DISPLAY"
    assert alarm["TRIGGER"].dt == dt.timedelta(minutes=-30)


@pytest.mark.parametrize(
    ("priority", "expected"), [("urgent", 1), ("high", 3), ("medium", 5), ("low", 9)]
)
def test_priorities_map_to_rfc_5545s_one_to_nine(alice, secret, priority, expected):
    make_task(alice, title="T", priority=priority)

    assert by_summary(parsed(get_feed(secret)))["T"]["PRIORITY"] == expected


def test_a_reminder_at_an_instant_is_an_offset_from_the_due_date_or_that_instant(alice, secret):
    due = local("2026-07-01T09:00", PARIS)
    two_hours_before = due - dt.timedelta(hours=2)
    make_task(alice, title="Dated", due_date=due, timezone=PARIS, remind_at=two_hours_before)
    at = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    make_task(alice, title="Undated", remind_at=at)

    todos = by_summary(parsed(get_feed(secret)))

    assert todos["Dated"].walk("VALARM")[0]["TRIGGER"].dt == dt.timedelta(hours=-2)
    assert todos["Undated"].walk("VALARM")[0]["TRIGGER"].dt == at


def test_completed_tasks_and_other_users_tasks_never_appear(alice, bob, secret):
    make_task(alice, title="Mine")
    done = make_task(alice, title="Done")
    services.task_complete(task=done)
    make_task(bob, title="Bob's")
    bob_secret = services.feed_token_create(user=bob)[1]

    assert set(by_summary(parsed(get_feed(secret)))) == {"Mine"}
    assert set(by_summary(parsed(get_feed(bob_secret)))) == {"Bob's"}


# --- recurrence: what a calendar app expands equals what Tideline schedules --------------------

SERIES = [
    # The clocks go forward in Paris on 29 March 2026: 10:00 stays 10:00 local.
    ("2026-03-16T10:00", PARIS, "FREQ=WEEKLY"),
    ("2026-03-23T10:00", PARIS, "FREQ=WEEKLY;BYDAY=MO,TH;COUNT=6"),
    # They go back in New York on 1 November 2026.
    ("2026-10-28T09:00", NEW_YORK, "FREQ=DAILY"),
    ("2026-10-30T23:30", NEW_YORK, "FREQ=DAILY;INTERVAL=2;UNTIL=20261112T000000Z"),
    ("2026-10-05T08:15", NEW_YORK, "FREQ=MONTHLY;BYDAY=1MO"),
]


def expanded(calendar: icalendar.Calendar, name: str, count: int) -> list[str]:
    start, end = dt.datetime(2026, 1, 1), dt.datetime(2028, 1, 1)
    query = recurring_ical_events.of(calendar, components=[name])
    return [c["DTSTART"].dt.isoformat() for c in query.between(start, end)][:count]


def api_occurrences(api, task: Task, count: int) -> list[str]:
    response = api.get(f"/api/tasks/{task.pk}/occurrences/", {"count": count})
    assert response.status_code == 200, response.json()
    return response.json()["occurrences"]


@pytest.mark.parametrize(("due", "tz_name", "rule"), SERIES)
@pytest.mark.parametrize("name", ["VTODO", "VEVENT"])
def test_a_calendar_expands_a_series_to_the_occurrences_the_api_lists(
    alice, api, secret, due, tz_name, rule, name
):
    task = make_task(
        alice, title="Series", due_date=local(due, tz_name), timezone=tz_name, recurrence_rule=rule
    )
    events = {"events": 1} if name == "VEVENT" else {}

    calendar = parsed(get_feed(secret, **events))

    want = api_occurrences(api, task, 12)
    assert expanded(calendar, name, 12) == want
    assert len(want) >= 6


def test_a_spawned_instance_keeps_the_series_uid_and_the_series_count(alice, api, secret):
    first = make_task(
        alice,
        title="Series",
        due_date=local("2026-10-29T09:00", NEW_YORK),
        timezone=NEW_YORK,
        recurrence_rule="FREQ=DAILY;COUNT=5",
    )
    uid = str(by_summary(parsed(get_feed(secret)))["Series"]["UID"])
    second = complete_and_relay(first)

    calendar = parsed(get_feed(secret))

    (todo,) = components(calendar)
    assert str(todo["UID"]) == uid == f"series-{first.series_id}@tideline"
    assert todo["RRULE"]["COUNT"] == [4]
    assert expanded(calendar, "VTODO", 10) == api_occurrences(api, second, 10)
    assert len(api_occurrences(api, second, 10)) == 4


def test_a_series_repeating_after_completion_shows_only_its_current_instance(alice, secret):
    make_task(
        alice,
        title="Water plants",
        due_date=local("2026-05-01T09:00", PARIS),
        timezone=PARIS,
        recurrence_rule="FREQ=WEEKLY",
        recurrence_mode="completion",
    )

    todo = by_summary(parsed(get_feed(secret)))["Water plants"]

    assert "RRULE" not in todo
    assert todo["DUE"].dt == local("2026-05-01T09:00", PARIS)


# --- events ----------------------------------------------------------------------------------


def test_events_1_lists_dated_tasks_as_vevents_and_nothing_else(alice, secret):
    make_task(alice, title="Dated", due_date=local("2026-05-01T09:00", PARIS), timezone=PARIS)
    make_task(alice, title="Undated")

    calendar = parsed(get_feed(secret, events="1"))

    assert components(calendar, "VTODO") == []
    (event,) = components(calendar, "VEVENT")
    assert str(event["SUMMARY"]) == "Dated"
    assert event["DTSTART"].params["TZID"] == PARIS


def test_an_events_value_that_is_not_0_or_1_is_a_400_naming_it(alice, secret):
    response = get_feed(secret, events="maybe")

    assert response.status_code == 400
    assert b"events" in response.content


# --- the secret --------------------------------------------------------------------------------


def test_an_unknown_revoked_or_rotated_secret_is_a_404(alice, secret):
    assert get_feed("not-a-secret").status_code == 404

    new_secret = services.feed_token_create(user=alice)[1]
    assert get_feed(secret).status_code == 404
    assert get_feed(new_secret).status_code == 200

    services.feed_token_revoke(user=alice)
    assert get_feed(new_secret).status_code == 404


def test_only_a_digest_of_the_secret_is_stored(alice, secret):
    token = selectors.feed_token_get(user=alice)

    assert secret not in (token.digest, token.prefix)
    assert secret.startswith(token.prefix)


# --- polling -----------------------------------------------------------------------------------


def test_an_unchanged_feed_answers_a_poll_with_304_and_a_changed_one_with_200(alice, secret):
    task = make_task(alice, title="Before", due_date=local("2026-05-01T09:00", PARIS))
    first = get_feed(secret)
    etag, last_modified = first["ETag"], first["Last-Modified"]

    assert get_feed(secret, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert get_feed(secret, HTTP_IF_MODIFIED_SINCE=last_modified).status_code == 304
    assert get_feed(secret)["ETag"] == etag  # the same feed, byte for byte

    services.task_update(task=task, data={"title": "After"})
    changed = get_feed(secret, HTTP_IF_NONE_MATCH=etag)

    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert "After" in by_summary(parsed(changed))


def test_a_poll_of_an_unchanged_feed_is_answered_without_building_it(alice, secret, monkeypatch):
    make_task(alice, title="Water plants", due_date=local("2026-05-01T09:00", PARIS), tags=["home"])
    etag = get_feed(secret)["ETag"]

    def fail(*args, **kwargs):
        raise AssertionError("the feed was built for a 304")

    monkeypatch.setattr("tasks.feeds.build_feed", fail)
    not_modified = get_feed(secret, HTTP_IF_NONE_MATCH=etag)

    assert not_modified.status_code == 304
    assert not_modified["ETag"] == etag
    assert not_modified.content == b""


@pytest.mark.parametrize(
    "change",
    ["rename the tag", "rename the category", "delete the tag", "delete the task", "add a task"],
)
def test_every_change_to_what_the_feed_says_changes_its_etag(alice, secret, change):
    """Renames and deletes of tags and categories leave the tasks' ``updated_at`` alone; the
    ETag is a digest of what the feed is built from, so it changes all the same."""
    home = make_category(alice, name="Home")
    task = make_task(
        alice, title="Water plants", due_date=local("2026-05-01T09:00", PARIS), category=home,
        tags=["green"],
    )  # fmt: skip
    etag = get_feed(secret)["ETag"]
    tag = task.tags.get()
    if change == "rename the tag":
        services.tag_update(tag=tag, data={"name": "garden"})
    elif change == "rename the category":
        services.category_update(category=home, data={"name": "House"})
    elif change == "delete the tag":
        services.tag_delete(tag=tag)
    elif change == "delete the task":
        services.task_delete(task=Task.objects.get(pk=task.pk))
    else:
        make_task(alice, title="Call mum")

    changed = get_feed(secret, HTTP_IF_NONE_MATCH=etag)

    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_the_feed_reads_with_three_queries_however_many_tasks(alice, secret):
    home = make_category(alice, name="Home")
    make_tag(alice, name="a")
    make_tag(alice, name="b")
    for number in range(20):
        make_task(
            alice,
            title=f"Task {number}",
            category=home,
            tags=["a", "b"],
            due_date=local(f"2026-05-{number + 1:02d}T09:00", PARIS),
            timezone=PARIS,
            recurrence_rule="FREQ=WEEKLY" if number % 2 else "",
        )

    with CaptureQueriesContext(connection) as queries:
        calendar = parsed(get_feed(secret))

    assert len(components(calendar)) == 20
    assert len(queries) == 3, [q["sql"] for q in queries.captured_queries]


def test_a_feed_lists_at_most_the_limit_latest_due_first(alice, secret, monkeypatch):
    monkeypatch.setattr(selectors, "FEED_TASK_LIMIT", 2)
    for day in (1, 2, 3):
        make_task(alice, title=f"May {day}", due_date=local(f"2026-05-0{day}T09:00", PARIS))
    make_task(alice, title="Undated")

    assert set(by_summary(parsed(get_feed(secret)))) == {"May 2", "May 3"}


# --- the API -----------------------------------------------------------------------------------


def test_the_api_shows_the_url_once_and_never_again(api):
    assert api.get("/api/feed/").json() == {"exists": False, "prefix": None, "created_at": None}

    created = api.post("/api/feed/")

    assert created.status_code == 201
    url = created.json()["url"]
    assert url.startswith("http://testserver/feeds/") and url.endswith("/tasks.ics")
    assert Client().get(url.removeprefix("http://testserver")).status_code == 200
    shown = api.get("/api/feed/")
    assert shown.status_code == 200
    assert shown.json()["exists"] is True
    assert shown.json()["prefix"] == created.json()["prefix"]
    assert url.split("/")[-2] not in shown.content.decode()


def test_posting_again_rotates_and_delete_revokes(api):
    old = api.post("/api/feed/").json()["url"].removeprefix("http://testserver")
    new = api.post("/api/feed/").json()["url"].removeprefix("http://testserver")

    assert Client().get(old).status_code == 404
    assert Client().get(new).status_code == 200

    assert api.delete("/api/feed/").status_code == 204
    assert Client().get(new).status_code == 404
    assert api.get("/api/feed/").json()["exists"] is False
    assert api.delete("/api/feed/").status_code == 204  # nothing left to revoke: still gone


def test_the_api_wants_a_signed_in_user(db):
    assert APIClient().get("/api/feed/").status_code in {401, 403}
    assert APIClient().post("/api/feed/").status_code in {401, 403}


# --- the settings page ------------------------------------------------------------------------


def test_the_settings_page_creates_shows_once_and_revokes_the_feed_url(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page = browser.get("/settings/")
    assert "Calendar feed" in page.content.decode()
    assert "Create a feed URL" in page.content.decode()
    csrf = page.cookies["csrftoken"].value

    created = browser.post("/settings/feed/create/", HTTP_X_CSRFTOKEN=csrf)

    assert created.status_code == 201
    token = selectors.feed_token_get(user=alice)
    html = created.content.decode()
    assert "it is not shown again" in html
    url = html.split('id="new-feed-url" class="token-field" type="text" value="')[1].split('"')[0]
    path = url.removeprefix("http://testserver")
    assert path.startswith(f"/feeds/{token.prefix}") and path.endswith("/tasks.ics")
    assert Client().get(path).status_code == 200

    again = browser.get("/settings/").content.decode()
    assert path not in again and "You have a feed URL" in again

    revoked = browser.post("/settings/feed/revoke/", HTTP_X_CSRFTOKEN=csrf)

    assert revoked.status_code == 302
    assert Client().get(path).status_code == 404
    assert browser.post("/settings/feed/create/").status_code == 403  # no CSRF token


def test_the_schema_documents_the_feed_operations(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)

    assert {"get", "post", "delete"} <= set(schema["paths"]["/api/feed/"])
    assert "201" in schema["paths"]["/api/feed/"]["post"]["responses"]
