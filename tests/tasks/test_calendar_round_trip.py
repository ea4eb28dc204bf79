"""Export, import, export: what another app reads back from Tideline's feed is what it wrote.

Alice's feed is imported by Bob (as if he moved his tasks over), and Bob's feed then says the
same as Alice's about every task: its UID, title, description, due time and its zone, repeat
rule, priority, categories and reminder. Only the task pages (URL) and the times of change
differ. Importing the file again creates nothing.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import icalendar
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tasks import services
from tests.factories import make_category, make_task

#: Properties that point at this installation's page or say when a task changed.
IDENTITY = {"URL", "DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "CREATED"}


def local(stamp: str, tz_name: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp).replace(tzinfo=zoneinfo.ZoneInfo(tz_name))


def feed_of(user, **params) -> bytes:
    secret = services.feed_token_create(user=user)[1]
    response = Client().get(f"/feeds/{secret}/tasks.ics", params)
    assert response.status_code == 200, response.content
    return response.content


def meaning(feed: bytes, kind: str) -> dict[str, dict]:
    """Each component by SUMMARY: its properties (identity left out) and its alarms'."""
    calendar = icalendar.Calendar.from_ical(feed)
    found = {}
    for component in calendar.walk(kind):
        props = {
            name: component[name].to_ical()
            for name in component
            if name not in IDENTITY and not isinstance(component[name], list)
        }
        props["CATEGORIES"] = (
            sorted(str(name) for name in component.get("CATEGORIES").cats if name)
            if "CATEGORIES" in component
            else []
        )
        props["ALARMS"] = [alarm["TRIGGER"].to_ical() for alarm in component.walk("VALARM")]
        props["TZIDS"] = sorted(
            component[name].params.get("TZID", "")
            for name in ("DTSTART", "DUE")
            if name in component
        )
        found[str(component["SUMMARY"])] = props
    return found


@pytest.fixture
def alices_tasks(alice):
    work = make_category(alice, "Work")
    make_task(
        alice,
        title="Pay rent",
        description="Transfer to the landlord",
        due_date=local("2030-03-01T09:00", "Europe/Paris"),
        timezone="Europe/Paris",
        recurrence_rule="FREQ=MONTHLY;BYMONTHDAY=1",
        priority="urgent",
        tags=["bills", "home"],
        remind_before=dt.timedelta(hours=1),
    )
    make_task(
        alice,
        title="Stand-up",
        due_date=local("2030-11-01T09:30", "America/New_York"),
        timezone="America/New_York",
        recurrence_rule="FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=10",
        priority="high",
        category=work,
    )
    make_task(
        alice,
        title="Renew passport",
        due_date=local("2030-06-15T12:00", "Asia/Tokyo"),
        timezone="Asia/Tokyo",
        priority="low",
        remind_at=local("2030-06-14T12:00", "Asia/Tokyo"),
    )
    make_task(alice, title="Someday: learn the cello", priority="medium")


@pytest.mark.parametrize("kind", ["VTODO", "VEVENT"])
def test_a_feed_imported_elsewhere_exports_the_same_tasks(alices_tasks, alice, bob, kind):
    params = {"events": "1"} if kind == "VEVENT" else {}
    exported = feed_of(alice, **params)

    bob_api = Client()
    bob_api.force_login(bob)
    response = bob_api.post(
        "/api/tasks/import/",
        {"file": SimpleUploadedFile("alice.ics", exported, content_type="text/calendar")},
    )
    assert response.status_code == 201, response.content
    assert response.json()["skipped"] == []

    before, after = meaning(exported, kind), meaning(feed_of(bob, **params), kind)
    assert sorted(after) == sorted(before)
    for title in before:
        assert after[title] == before[title], title


@pytest.mark.parametrize("kind", ["VTODO", "VEVENT"])
def test_importing_the_same_feed_again_creates_nothing(alices_tasks, alice, bob, kind):
    params = {"events": "1"} if kind == "VEVENT" else {}
    exported = feed_of(alice, **params)
    first = services.tasks_import_ical(user=bob, data=exported)
    bobs_feed = feed_of(bob, **params)

    again = services.tasks_import_ical(user=bob, data=exported)

    assert again.created == [] and again.skipped == []
    assert [(a.index, a.id) for a in again.already_imported] == [
        (c.index, c.id) for c in first.created
    ]
    assert feed_of(bob, **params) == bobs_feed
    # Bob's own feed, imported by Bob, is his tasks too.
    assert len(services.tasks_import_ical(user=bob, data=bobs_feed).already_imported) == len(
        first.created
    )
