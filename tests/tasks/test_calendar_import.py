"""Importing .ics files (``services.tasks_import_ical`` and ``POST /api/tasks/import/``).

The files below are written the way other apps write them (Thunderbird/Lightning, Google
Calendar, Apple Reminders); docs/calendar-import.md holds the mapping they check.
"""

import datetime as dt
import json
import threading
import zoneinfo

import icalendar
import pytest
import recurring_ical_events
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tasks import services
from tasks.models import Task
from tests.recurrence.helpers import complete_and_relay
from tests.support.events import capture_events

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
UTC = dt.UTC


def ics(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


THUNDERBIRD_VTODO = ics(
    "BEGIN:VCALENDAR",
    "PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN",
    "VERSION:2.0",
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",
    "END:STANDARD",
    "END:VTIMEZONE",
    "BEGIN:VTODO",
    "CREATED:20260301T101500Z",
    "LAST-MODIFIED:20260301T101600Z",
    "DTSTAMP:20260301T101600Z",
    "UID:2f0c6a3e-1b7e-4f0c-9a51-7d2b1c0e5a11",
    "SUMMARY:File the tax return",
    "DESCRIPTION:Forms are in the blue folder.",
    "PRIORITY:1",
    "CATEGORIES:Paperwork,Home",
    "DTSTART;TZID=Europe/Paris:20300515T090000",
    "DUE;TZID=Europe/Paris:20300515T180000",
    "STATUS:NEEDS-ACTION",
    "BEGIN:VALARM",
    "ACTION:DISPLAY",
    "DESCRIPTION:Default Mozilla Description",
    "TRIGGER;VALUE=DURATION;RELATED=END:-PT30M",
    "END:VALARM",
    "END:VTODO",
    "END:VCALENDAR",
)

GOOGLE_VEVENT = ics(
    "BEGIN:VCALENDAR",
    "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
    "VERSION:2.0",
    "CALSCALE:GREGORIAN",
    "METHOD:PUBLISH",
    "X-WR-CALNAME:Work",
    "X-WR-TIMEZONE:America/New_York",
    "BEGIN:VTIMEZONE",
    "TZID:America/New_York",
    "X-LIC-LOCATION:America/New_York",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:-0500",
    "TZOFFSETTO:-0400",
    "TZNAME:EDT",
    "DTSTART:19700308T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:-0400",
    "TZOFFSETTO:-0500",
    "TZNAME:EST",
    "DTSTART:19701101T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
    "BEGIN:VEVENT",
    "DTSTART;TZID=America/New_York:20300107T100000",
    "DTEND;TZID=America/New_York:20300107T103000",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20301231T235959Z",
    "DTSTAMP:20260301T120000Z",
    "UID:7kukuqrfedlm2f9t2vb6j4ut6g@google.com",
    "CREATED:20260201T120000Z",
    "DESCRIPTION:Stand-up",
    "LAST-MODIFIED:20260201T120000Z",
    "SEQUENCE:0",
    "STATUS:CONFIRMED",
    "SUMMARY:Team stand-up",
    "TRANSP:OPAQUE",
    "BEGIN:VALARM",
    "ACTION:DISPLAY",
    "DESCRIPTION:This is an event reminder",
    "TRIGGER:-P0DT0H10M0S",
    "END:VALARM",
    "END:VEVENT",
    "END:VCALENDAR",
)

APPLE_REMINDERS = ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Apple Inc.//iOS 17.0//EN",
    "CALSCALE:GREGORIAN",
    "BEGIN:VTODO",
    "UID:A1B2C3D4-0000-4000-8000-000000000001",
    "DTSTAMP:20260301T090000Z",
    "SUMMARY:Buy milk",
    "PRIORITY:9",
    "DUE;VALUE=DATE:20300110",
    "END:VTODO",
    "BEGIN:VTODO",
    "UID:A1B2C3D4-0000-4000-8000-000000000002",
    "DTSTAMP:20260301T090000Z",
    "SUMMARY:Call the plumber",
    "PRIORITY:5",
    "DUE:20300111T140000Z",
    "BEGIN:VALARM",
    "ACTION:DISPLAY",
    "TRIGGER;VALUE=DATE-TIME:20300111T130000Z",
    "END:VALARM",
    "END:VTODO",
    "BEGIN:VTODO",
    "UID:A1B2C3D4-0000-4000-8000-000000000003",
    "DTSTAMP:20260301T090000Z",
    "SUMMARY:Renew passport",
    "PRIORITY:1",
    "STATUS:COMPLETED",
    "COMPLETED:20260215T100000Z",
    "END:VTODO",
    "END:VCALENDAR",
)

FLAWED_ITEMS = ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Example//Flawed//EN",
    "BEGIN:VEVENT",
    "UID:bad-rule@example.com",
    "SUMMARY:Every blue moon",
    "DTSTART:20300101T090000",
    "RRULE:FREQ=FORTNIGHTLY",
    "END:VEVENT",
    "BEGIN:VTODO",
    "UID:no-summary@example.com",
    "DUE:20300101T090000",
    "END:VTODO",
    "BEGIN:VTODO",
    "UID:fine@example.com",
    "SUMMARY:Still imported",
    "END:VTODO",
    "END:VCALENDAR",
)


@pytest.fixture
def paris_alice(alice):
    services.profile_update(user=alice, data={"timezone": "Europe/Paris"})
    return alice


def imported(user, data: bytes) -> tuple[services.ImportReport, dict[str, Task]]:
    report = services.tasks_import_ical(user=user, data=data)
    tasks = Task.objects.for_user(user).with_relations()
    return report, {task.title: task for task in tasks}


# --- what other apps write ---------------------------------------------------------------


def test_a_thunderbird_todo_keeps_its_zone_due_time_priority_tags_and_reminder(paris_alice):
    report, tasks = imported(paris_alice, THUNDERBIRD_VTODO)

    task = tasks["File the tax return"]
    assert [(c.id, c.title, c.notes) for c in report.created] == [(task.pk, task.title, [])]
    assert report.skipped == []
    assert task.description == "Forms are in the blue folder."
    assert task.due_date == dt.datetime(2030, 5, 15, 18, tzinfo=PARIS)
    assert task.timezone == "Europe/Paris"
    assert task.priority == "urgent"
    assert task.tag_names() == ["Home", "Paperwork"]
    assert task.category is None
    assert task.remind_before == dt.timedelta(minutes=30)
    assert task.remind_at == dt.datetime(2030, 5, 15, 17, 30, tzinfo=PARIS)


def test_a_google_event_becomes_a_repeating_task_in_its_own_zone(paris_alice):
    report, tasks = imported(paris_alice, GOOGLE_VEVENT)

    task = tasks["Team stand-up"]
    assert len(report.created) == 1
    assert task.due_date == dt.datetime(2030, 1, 7, 10, tzinfo=NEW_YORK)
    assert task.timezone == "America/New_York"
    assert task.recurrence_rule == "FREQ=WEEKLY;UNTIL=20301231T235959Z;BYDAY=MO,WE"
    assert task.series_id is not None
    assert task.remind_before == dt.timedelta(minutes=10)
    assert task.priority == "medium"


def test_apple_reminders_priorities_all_day_dates_and_completed_items(paris_alice):
    report, tasks = imported(paris_alice, APPLE_REMINDERS)

    milk, plumber = tasks["Buy milk"], tasks["Call the plumber"]
    assert milk.priority == "low"
    # An all-day date is due that day at DEFAULT_DUE_TIME, in the profile's zone.
    assert milk.due_date == dt.datetime(2030, 1, 10, 9, tzinfo=PARIS)
    assert milk.timezone == "Europe/Paris"
    # A UTC time keeps its instant, shown in the profile's zone; an absolute alarm stays.
    assert plumber.priority == "medium"
    assert plumber.due_date == dt.datetime(2030, 1, 11, 14, tzinfo=UTC)
    assert plumber.timezone == "Europe/Paris"
    assert plumber.remind_at == dt.datetime(2030, 1, 11, 13, tzinfo=UTC)
    assert plumber.remind_before is None
    [skipped] = report.skipped
    assert (skipped.index, skipped.summary, skipped.reason) == (
        3,
        "Renew passport",
        "Already completed.",
    )
    assert skipped.uid == "A1B2C3D4-0000-4000-8000-000000000003"
    assert "Renew passport" not in tasks


def test_a_floating_time_is_wall_clock_time_in_the_profile_zone(paris_alice):
    data = ics(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:x",
        "BEGIN:VTODO",
        "UID:f",
        "SUMMARY:Floating",
        "DUE:20300701T083000",
        "END:VTODO",
        "END:VCALENDAR",
    )
    _, tasks = imported(paris_alice, data)
    assert tasks["Floating"].due_date == dt.datetime(2030, 7, 1, 8, 30, tzinfo=PARIS)


def test_a_zone_tideline_does_not_offer_keeps_the_instant_with_a_note(paris_alice):
    data = ics(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:x",
        "BEGIN:VTODO",
        "UID:a",
        "SUMMARY:Old alias",
        "DUE;TZID=US/Eastern:20300701T083000",
        "END:VTODO",
        "END:VCALENDAR",
    )
    report, tasks = imported(paris_alice, data)
    task = tasks["Old alias"]
    assert task.due_date == dt.datetime(2030, 7, 1, 8, 30, tzinfo=NEW_YORK)
    assert task.timezone == "Europe/Paris"
    assert report.created[0].notes == ["Time zone US/Eastern is read as yours."]


@pytest.mark.parametrize(
    ("component", "due", "trigger"),
    [
        ("VTODO", "DUE", "TRIGGER;RELATED=END:PT1H"),  # after the due date
        ("VEVENT", "DTSTART", "TRIGGER;RELATED=END:-PT5M"),  # before the event's end
    ],
)
def test_an_alarm_not_before_the_due_date_is_left_out_with_a_note(
    paris_alice, component, due, trigger
):
    data = ics(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:x",
        f"BEGIN:{component}",
        "UID:a",
        "SUMMARY:Late alarm",
        f"{due};TZID=Europe/Paris:20300701T083000",
        *(["DTEND;TZID=Europe/Paris:20300701T093000"] if component == "VEVENT" else []),
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        trigger,
        "END:VALARM",
        f"END:{component}",
        "END:VCALENDAR",
    )
    report, tasks = imported(paris_alice, data)
    assert tasks["Late alarm"].remind_at is None
    assert report.created[0].notes == ["The alarm is not before the due date: not imported."]


# --- what is skipped, and what is refused ---------------------------------------------------


def test_a_bad_rule_and_a_todo_without_summary_are_skipped_the_rest_created(paris_alice):
    report, tasks = imported(paris_alice, FLAWED_ITEMS)

    assert list(tasks) == ["Still imported"]
    assert [c.index for c in report.created] == [3]
    bad_rule, no_summary = report.skipped
    assert (bad_rule.index, bad_rule.uid, bad_rule.summary) == (
        1,
        "bad-rule@example.com",
        "Every blue moon",
    )
    assert bad_rule.reason.startswith("recurrence_rule: FREQ must be one of")
    assert (no_summary.index, no_summary.uid, no_summary.summary, no_summary.reason) == (
        2,
        "no-summary@example.com",
        "",
        "No SUMMARY: a task needs a title.",
    )


def test_a_rule_tideline_refuses_through_the_api_is_refused_on_import(paris_alice):
    data = ics(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:x",
        "BEGIN:VTODO",
        "UID:r",
        "SUMMARY:Too many",
        "DUE:20300101T090000",
        "RRULE:FREQ=DAILY;COUNT=20000",
        "END:VTODO",
        "END:VCALENDAR",
    )
    report, tasks = imported(paris_alice, data)
    assert tasks == {}
    assert report.skipped[0].reason == (
        "recurrence_rule: COUNT must be a whole number from 1 to 10000."
    )


def test_each_created_task_emits_its_event_and_a_skipped_one_none(paris_alice):
    with capture_events() as captured:
        report = services.tasks_import_ical(user=paris_alice, data=FLAWED_ITEMS)

    assert [e.event_type for e in captured.events] == ["task.created"]
    assert captured.events[0].data["task_id"] == report.created[0].id


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, world",
        b"\xff\xfe\x00garbage",
        b"BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nSUMMARY:x\r\n",
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Alice\r\nEND:VCARD\r\n",
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nno colon here\r\nEND:VCALENDAR\r\n",
        b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
    ],
)
def test_a_file_that_is_not_a_readable_calendar_is_refused_on_file(alice, data):
    with pytest.raises(ValidationError) as caught:
        services.tasks_import_ical(user=alice, data=data)
    assert list(caught.value.message_dict) == ["file"]


@pytest.mark.parametrize(
    "lines",
    [
        ["SUMMARY:Broken start", "DTSTART:garbage"],
        ["SUMMARY:Far away", "DTSTART:99990101T000000"],
        ["SUMMARY:Long ago", "DTSTART;VALUE=DATE:00010101"],
        ["SUMMARY:Broken alarm", "DTSTART:20300101T090000", "RRULE:", "EXDATE:x"],
        ["SUMMARY:" + "x" * 300],
        ["SUMMARY:Bad tag", "CATEGORIES:" + "y" * 60],
    ],
)
def test_broken_events_are_skipped_never_a_crash(alice, lines):
    data = ics(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:x",
        "BEGIN:VEVENT",
        "UID:u",
        *lines,
        "END:VEVENT",
        "END:VCALENDAR",
    )
    report = services.tasks_import_ical(user=alice, data=data)
    assert report.created == [] and len(report.skipped) == 1
    assert report.skipped[0].reason


def one_bad_among_good(component: str, *bad: str) -> bytes:
    """A file of three items; the second (UID ``bad``) has the ``bad`` lines."""
    return ics(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:x",
        "BEGIN:VTODO",
        "UID:before",
        "SUMMARY:Before",
        "END:VTODO",
        f"BEGIN:{component}",
        "UID:bad",
        "SUMMARY:The bad one",
        *bad,
        f"END:{component}",
        "BEGIN:VEVENT",
        "UID:after",
        "SUMMARY:After",
        "DTSTART:20300101T090000",
        "END:VEVENT",
        "END:VCALENDAR",
    )


@pytest.mark.parametrize("component", ["VTODO", "VEVENT"])
@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (["DUE:garbage"], "DUE cannot be read: Expected time, got: garbage"),
        (["DTSTART:2030"], "DTSTART cannot be read: Expected datetime, date, or time. Got: '2030'"),
        (["DTSTART;TZID=Europe/Paris:20300101T25"], "DTSTART cannot be read: "),
        (["DUE;VALUE=DATE:2030-01-01"], "DUE cannot be read: "),
        (["DTSTART:20300101T090000", "RECURRENCE-ID:x"], "RECURRENCE-ID cannot be read: "),
        (["DTSTART:20300101T090000", "RRULE:FREQ=DAILY;COUNT=x"], "recurrence_rule: "),
        (["DTSTART:20300101T090000", "RRULE:FREQ=FORTNIGHTLY"], "recurrence_rule: FREQ must be"),
    ],
)
def test_an_unreadable_date_or_rule_skips_only_its_item_naming_the_value(
    paris_alice, component, bad, reason
):
    report, tasks = imported(paris_alice, one_bad_among_good(component, *bad))

    assert sorted(tasks) == ["After", "Before"]
    assert [c.index for c in report.created] == [1, 3]
    [skipped] = report.skipped
    assert (skipped.index, skipped.uid, skipped.summary) == (2, "bad", "The bad one")
    assert skipped.reason.startswith(reason), skipped.reason


@pytest.mark.parametrize("component", ["VTODO", "VEVENT"])
@pytest.mark.parametrize(
    ("bad", "note", "expected"),
    [
        (
            ["PRIORITY:high"],
            "PRIORITY cannot be read (Expected int, got: high): the task is medium.",
            {"priority": "medium"},
        ),
        (
            ["DTSTART:20300101T090000", "BEGIN:VALARM", "TRIGGER:soon", "END:VALARM"],
            "The alarm's TRIGGER cannot be read (Expected datetime, date, or time. Got: "
            "'soon'): not imported.",
            {"remind_at": None, "due_date": dt.datetime(2030, 1, 1, 9, tzinfo=PARIS)},
        ),
        (
            ["DUE;TZID=Mars/Olympus:20300101T090000"],
            "Unknown time zone Mars/Olympus: read in yours.",
            {"due_date": dt.datetime(2030, 1, 1, 9, tzinfo=PARIS), "timezone": "Europe/Paris"},
        ),
    ],
)
def test_an_unreadable_optional_value_is_left_out_with_a_note(
    paris_alice, component, bad, note, expected
):
    if component == "VEVENT":
        bad = [line.replace("DUE;", "DTSTART;") for line in bad]
    report, tasks = imported(paris_alice, one_bad_among_good(component, *bad))

    assert report.skipped == []
    assert [(c.index, c.notes) for c in report.created] == [(1, []), (2, [note]), (3, [])]
    task = tasks["The bad one"]
    assert {name: getattr(task, name) for name in expected} == expected


@pytest.mark.parametrize(
    "broken",
    [
        ["TZOFFSETFROM:garbage", "TZOFFSETTO:+0100", "DTSTART:19700101T000000"],
        ["TZOFFSETFROM:+0100", "TZOFFSETTO:+0100"],  # no DTSTART
    ],
)
def test_a_time_zone_definition_that_cannot_be_read_leaves_its_tzid_unknown(paris_alice, broken):
    data = one_bad_among_good("VTODO", "DUE;TZID=Custom/Broken:20300101T090000").replace(
        b"PRODID:x\r\n",
        ics(
            "PRODID:x",
            "BEGIN:VTIMEZONE",
            "TZID:Custom/Broken",
            "BEGIN:STANDARD",
            *broken,
            "END:STANDARD",
            "END:VTIMEZONE",
        ),
    )
    report, tasks = imported(paris_alice, data)

    assert sorted(tasks) == ["After", "Before", "The bad one"]
    assert report.created[1].notes == ["Unknown time zone Custom/Broken: read in yours."]
    assert tasks["The bad one"].due_date == dt.datetime(2030, 1, 1, 9, tzinfo=PARIS)


def custom_zone_file(offset: str) -> bytes:
    return ics(
        "BEGIN:VCALENDAR",
        "PRODID:x",
        "BEGIN:VTIMEZONE",
        "TZID:Custom/Office",
        "BEGIN:STANDARD",
        f"TZOFFSETFROM:{offset}",
        f"TZOFFSETTO:{offset}",
        "DTSTART:19700101T000000",
        "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VTODO",
        f"UID:office-{offset}",
        "SUMMARY:Office hours",
        "DUE;TZID=Custom/Office:20300101T090000",
        "END:VTODO",
        "END:VCALENDAR",
    )


def test_one_users_time_zone_definition_never_changes_how_anothers_file_reads(paris_alice, bob):
    """icalendar keeps VTIMEZONEs in a cache the whole process shares: an import never
    puts a file's own definition there, so a zone name is read the same for everyone."""
    services.profile_update(user=bob, data={"timezone": "America/New_York"})

    alices_report, alices = imported(paris_alice, custom_zone_file("+0500"))
    bobs_report, bobs = imported(bob, custom_zone_file("-0300"))

    note = "Unknown time zone Custom/Office: read in yours."
    assert alices_report.created[0].notes == [note]
    assert bobs_report.created[0].notes == [note]
    assert alices["Office hours"].due_date == dt.datetime(2030, 1, 1, 9, tzinfo=PARIS)
    assert bobs["Office hours"].due_date == dt.datetime(2030, 1, 1, 9, tzinfo=NEW_YORK)
    assert icalendar.timezone.tzp.timezone("Custom/Office") is None


def test_a_line_that_cannot_be_read_inside_an_item_is_left_out_with_a_note(paris_alice):
    report, tasks = imported(paris_alice, one_bad_among_good("VTODO", "GEO:x", "not a line"))

    assert sorted(tasks) == ["After", "Before", "The bad one"]
    assert report.created[1].notes == [
        "A line cannot be read: left out (Content line could not be parsed into parts: "
        "'not a line': Invalid content line)."
    ]


def test_an_item_without_uid_is_imported_with_a_note_that_it_is_not_recognised_again(
    paris_alice,
):
    data = ics("BEGIN:VCALENDAR", "BEGIN:VTODO", "SUMMARY:No UID", "END:VTODO", "END:VCALENDAR")

    report, tasks = imported(paris_alice, data)

    assert report.created[0].notes == ["No UID: importing this item again creates it again."]
    assert tasks["No UID"].ical_uid is None


def test_too_many_items_are_refused_before_any_is_created(alice):
    items = [f"BEGIN:VTODO\r\nUID:{i}\r\nSUMMARY:Item {i}\r\nEND:VTODO" for i in range(501)]
    data = ics("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:x", *items, "END:VCALENDAR")
    with pytest.raises(ValidationError) as caught:
        services.tasks_import_ical(user=alice, data=data)
    assert "at most 500" in caught.value.message_dict["file"][0]
    assert not Task.objects.exists()


def test_a_file_over_the_size_cap_is_refused(alice):
    data = ics("BEGIN:VCALENDAR", "X-PAD:" + "p" * services.MAX_ICAL_BYTES, "END:VCALENDAR")
    with pytest.raises(ValidationError) as caught:
        services.tasks_import_ical(user=alice, data=data)
    assert "larger than" in caught.value.message_dict["file"][0]


# --- the API ----------------------------------------------------------------------------------


def upload(data: bytes, name: str = "tasks.ics") -> dict:
    return {"file": SimpleUploadedFile(name, data, content_type="text/calendar")}


def test_the_api_answers_201_with_the_report(api, alice):
    response = api.post("/api/tasks/import/", upload(FLAWED_ITEMS), format="multipart")

    assert response.status_code == 201
    task = Task.objects.get(user=alice)
    assert response.json() == {
        "created": [{"index": 3, "id": task.pk, "title": "Still imported", "notes": []}],
        "already_imported": [],
        "skipped": [
            {
                "index": 1,
                "uid": "bad-rule@example.com",
                "summary": "Every blue moon",
                "reason": response.json()["skipped"][0]["reason"],
            },
            {
                "index": 2,
                "uid": "no-summary@example.com",
                "summary": "",
                "reason": "No SUMMARY: a task needs a title.",
            },
        ],
    }


def test_the_api_answers_200_when_nothing_was_created(api):
    data = ics("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:x", "END:VCALENDAR")
    response = api.post("/api/tasks/import/", upload(data), format="multipart")
    assert response.status_code == 200
    assert response.json() == {"created": [], "already_imported": [], "skipped": []}


def test_the_api_refuses_a_file_that_is_not_icalendar_with_a_400_on_file(api):
    response = api.post("/api/tasks/import/", upload(b"%PDF-1.7", "a.pdf"), format="multipart")
    assert response.status_code == 400
    assert list(response.json()) == ["file"]


def test_the_api_refuses_an_unknown_field(api):
    body = {**upload(FLAWED_ITEMS), "fiel": "x"}
    response = api.post("/api/tasks/import/", body, format="multipart")
    assert response.status_code == 400
    assert list(response.json()) == ["fiel"]
    assert not Task.objects.exists()


def test_the_api_requires_the_file_field(api):
    response = api.post("/api/tasks/import/", {}, format="multipart")
    assert response.status_code == 400
    assert list(response.json()) == ["file"]


def test_the_api_requires_credentials(db, anon_api):
    response = anon_api.post("/api/tasks/import/", upload(FLAWED_ITEMS), format="multipart")
    assert response.status_code == 401


def test_an_import_never_touches_another_users_data(api, alice, bob, make_task, make_tag):
    bobs_tag = make_tag(bob, name="Home")
    bobs_task = make_task(bob, title="File the tax return")
    before = bobs_task.updated_at

    response = api.post("/api/tasks/import/", upload(THUNDERBIRD_VTODO), format="multipart")

    assert response.status_code == 201
    created = Task.objects.get(pk=response.json()["created"][0]["id"])
    assert created.user == alice
    assert {tag.user_id for tag in created.tags.all()} == {alice.pk}
    assert Task.objects.filter(user=bob).count() == 1
    bobs_task.refresh_from_db()
    assert bobs_task.updated_at == before
    assert list(bobs_tag.tasks.all()) == []


def test_an_imported_series_repeats_as_the_source_calendar_shows_it_across_dst(api, alice):
    """recurring-ical-events (an independent expansion) reads the Google file; the imported
    task's occurrences are the same instants, through New York's spring change (Mar 10)."""
    response = api.post("/api/tasks/import/", upload(GOOGLE_VEVENT), format="multipart")
    task_id = response.json()["created"][0]["id"]
    shown = api.get(f"/api/tasks/{task_id}/occurrences/", {"count": 30}).json()["occurrences"]

    calendar = icalendar.Calendar.from_ical(GOOGLE_VEVENT)
    expected = [
        event.decoded("DTSTART")
        for event in recurring_ical_events.of(calendar).between(
            dt.datetime(2030, 1, 1, tzinfo=UTC), dt.datetime(2031, 1, 1, tzinfo=UTC)
        )
    ][:30]
    assert [dt.datetime.fromisoformat(value) for value in shown] == expected
    assert expected[0].utcoffset() != expected[-1].utcoffset()  # the test spans the change


def items_file(count: int, batch: str = "a") -> bytes:
    items = [
        f"BEGIN:VTODO\r\nUID:{batch}-{i}\r\nSUMMARY:Item {i}\r\nCATEGORIES:home\r\n"
        f"DUE;TZID=Europe/Paris:20300101T0900{i % 60:02}\r\nEND:VTODO"
        for i in range(count)
    ]
    return ics("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:x", *items, "END:VCALENDAR")


def test_each_item_costs_the_same_fixed_number_of_queries(paris_alice):
    services.tasks_import_ical(user=paris_alice, data=items_file(1))  # the tag exists
    with CaptureQueriesContext(connection) as one:
        services.tasks_import_ical(user=paris_alice, data=items_file(1, "b"))
    with CaptureQueriesContext(connection) as four:
        services.tasks_import_ical(user=paris_alice, data=items_file(4, "c"))
    with CaptureQueriesContext(connection) as again:
        services.tasks_import_ical(user=paris_alice, data=items_file(4, "c"))

    per_item = (len(four) - len(one)) // 3
    assert len(four) == len(one) + 3 * per_item
    # Each item: SAVEPOINT, INSERT the task, read its tags, link them, the outbox row,
    # RELEASE. Around them: the import's savepoint and release, the profile's zone and the
    # UIDs the user already has (one query for the whole file).
    assert per_item == 6
    assert len(one) == 4 + per_item
    assert len(again) == 4  # everything already imported: nothing per item


# --- importing again: each calendar item becomes one task --------------------------------------


def test_importing_the_same_file_twice_creates_nothing_the_second_time(paris_alice):
    first = services.tasks_import_ical(user=paris_alice, data=APPLE_REMINDERS)
    assert [c.title for c in first.created] == ["Buy milk", "Call the plumber"]

    again = services.tasks_import_ical(user=paris_alice, data=APPLE_REMINDERS)

    assert again.created == []
    assert [(a.index, a.uid, a.summary, a.id) for a in again.already_imported] == [
        (1, "A1B2C3D4-0000-4000-8000-000000000001", "Buy milk", first.created[0].id),
        (2, "A1B2C3D4-0000-4000-8000-000000000002", "Call the plumber", first.created[1].id),
    ]
    assert [(s.index, s.reason) for s in again.skipped] == [(3, "Already completed.")]
    assert Task.objects.filter(user=paris_alice).count() == 2


def test_a_uid_twice_in_one_file_is_one_task(paris_alice):
    item = "BEGIN:VTODO\r\nUID:same\r\nSUMMARY:Twice\r\nEND:VTODO"
    report, tasks = imported(paris_alice, ics("BEGIN:VCALENDAR", item, item, "END:VCALENDAR"))

    assert list(tasks) == ["Twice"]
    assert [(a.index, a.id) for a in report.already_imported] == [(2, tasks["Twice"].pk)]


def test_uids_are_per_user(paris_alice, bob):
    services.tasks_import_ical(user=bob, data=THUNDERBIRD_VTODO)

    report = services.tasks_import_ical(user=paris_alice, data=THUNDERBIRD_VTODO)

    assert len(report.created) == 1 and report.already_imported == []


def test_a_moved_occurrence_of_an_imported_series_is_still_skipped_as_such(paris_alice):
    moved = (
        "BEGIN:VEVENT\r\nUID:7kukuqrfedlm2f9t2vb6j4ut6g@google.com\r\nSUMMARY:Moved\r\n"
        "RECURRENCE-ID;TZID=America/New_York:20300109T100000\r\n"
        "DTSTART;TZID=America/New_York:20300109T110000\r\nEND:VEVENT\r\nEND:VCALENDAR"
    )
    data = GOOGLE_VEVENT.replace(b"END:VCALENDAR", moved.encode())
    services.tasks_import_ical(user=paris_alice, data=data)

    again = services.tasks_import_ical(user=paris_alice, data=data)

    assert [a.index for a in again.already_imported] == [1]
    assert [s.reason for s in again.skipped] == [
        "A changed occurrence of a repeating item (RECURRENCE-ID) is not imported."
    ]


def test_the_api_reports_what_was_already_imported_with_a_200(api, alice):
    first = api.post("/api/tasks/import/", upload(THUNDERBIRD_VTODO), format="multipart")
    task_id = first.json()["created"][0]["id"]

    again = api.post("/api/tasks/import/", upload(THUNDERBIRD_VTODO), format="multipart")

    assert again.status_code == 200
    assert again.json() == {
        "created": [],
        "already_imported": [
            {
                "index": 1,
                "uid": "2f0c6a3e-1b7e-4f0c-9a51-7d2b1c0e5a11",
                "summary": "File the tax return",
                "id": task_id,
            }
        ],
        "skipped": [],
    }


def test_the_schema_documents_the_report(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)

    operation = schema["paths"]["/api/tasks/import/"]["post"]
    refs = {
        code: operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        for code in ("200", "201")
    }
    assert set(refs.values()) == {"#/components/schemas/ImportReport"}
    components = schema["components"]["schemas"]
    report = components["ImportReport"]
    assert set(report["required"]) == {"created", "already_imported", "skipped"}
    already = components["AlreadyImported"]
    assert set(already["required"]) == {"index", "uid", "summary", "id"}
    assert "already holds this UID" in already["properties"]["id"]["description"]


def feed_uids(user) -> dict[str, str]:
    secret = services.feed_token_create(user=user)[1]
    response = Client().get(f"/feeds/{secret}/tasks.ics")
    calendar = icalendar.Calendar.from_ical(response.content)
    return {str(todo["SUMMARY"]): str(todo["UID"]) for todo in calendar.walk("VTODO")}


def test_the_feed_gives_an_imported_task_and_series_their_original_uid(paris_alice):
    services.tasks_import_ical(user=paris_alice, data=THUNDERBIRD_VTODO)
    services.tasks_import_ical(user=paris_alice, data=GOOGLE_VEVENT)

    assert feed_uids(paris_alice) == {
        "File the tax return": "2f0c6a3e-1b7e-4f0c-9a51-7d2b1c0e5a11",
        "Team stand-up": "7kukuqrfedlm2f9t2vb6j4ut6g@google.com",
    }


def test_an_imported_series_keeps_its_uid_in_the_feed_after_an_instance_is_done(paris_alice):
    report = services.tasks_import_ical(user=paris_alice, data=GOOGLE_VEVENT)
    first = Task.objects.get(pk=report.created[0].id)

    second = complete_and_relay(first)

    assert second.ical_uid is None  # the UID stays with the task the item became
    assert feed_uids(paris_alice) == {"Team stand-up": "7kukuqrfedlm2f9t2vb6j4ut6g@google.com"}
    again = services.tasks_import_ical(user=paris_alice, data=GOOGLE_VEVENT)
    assert [a.id for a in again.already_imported] == [first.pk]


def test_importing_ones_own_feed_creates_nothing(paris_alice, make_task):
    single = make_task(paris_alice, title="Single")
    series = make_task(
        paris_alice,
        title="Daily",
        due_date=dt.datetime(2030, 1, 1, 9, tzinfo=PARIS),
        recurrence_rule="FREQ=DAILY",
    )
    secret = services.feed_token_create(user=paris_alice)[1]
    own_feed = Client().get(f"/feeds/{secret}/tasks.ics").content

    report = services.tasks_import_ical(user=paris_alice, data=own_feed)

    assert report.created == [] and report.skipped == []
    assert sorted((a.summary, a.id) for a in report.already_imported) == [
        ("Daily", series.pk),
        ("Single", single.pk),
    ]


def test_another_users_feed_is_imported_not_mistaken_for_ones_own(paris_alice, bob):
    bobs = services.task_create(user=bob, title="Bob's")
    secret = services.feed_token_create(user=bob)[1]
    bobs_feed = Client().get(f"/feeds/{secret}/tasks.ics").content

    report, tasks = imported(paris_alice, bobs_feed)

    assert [c.title for c in report.created] == ["Bob's"]
    assert tasks["Bob's"].ical_uid == f"task-{bobs.pk}@tideline"


# --- concurrent imports (PostgreSQL: real row locks, one connection per thread) ----------------

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent imports are checked on PostgreSQL"
)


def todos(*uids: str) -> bytes:
    items = [f"BEGIN:VTODO\r\nUID:{uid}\r\nSUMMARY:Item {uid}\r\nEND:VTODO" for uid in uids]
    return ics("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:x", *items, "END:VCALENDAR")


@needs_postgresql
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "second_file",
    [todos("a", "b"), todos("b", "a")],
    ids=["the-same-file-twice", "the-same-items-in-another-order"],
)
def test_a_double_submit_creates_each_task_once(alice, monkeypatch, second_file):
    """The first import holds its first new task uncommitted; the second, started meanwhile,
    finds no UID held, waits on the unique index and reports the items as already imported
    (never a deadlock, whatever the order of the items in the files)."""
    started, release = threading.Event(), threading.Event()
    real_create = services.task_create

    def first_holds_its_transaction(**kwargs):
        task = real_create(**kwargs)
        if threading.current_thread().name == "first":
            started.set()
            release.wait(timeout=10)
        return task

    monkeypatch.setattr(services, "task_create", first_holds_its_transaction)
    files = {"first": todos("a", "b"), "second": second_file}
    reports = {}

    def run_import():
        try:
            name = threading.current_thread().name
            reports[name] = services.tasks_import_ical(user=alice, data=files[name])
        finally:
            connections.close_all()

    first = threading.Thread(target=run_import, name="first")
    first.start()
    assert started.wait(timeout=10)
    second = threading.Thread(target=run_import, name="second")
    second.start()
    second.join(timeout=0.5)  # blocked on the first import's uncommitted row
    assert second.is_alive()
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)

    tasks = dict(Task.objects.filter(user=alice).values_list("ical_uid", "pk"))
    assert sorted(tasks) == ["a", "b"]
    assert [(c.index, c.id) for c in reports["first"].created] == [(1, tasks["a"]), (2, tasks["b"])]
    assert reports["second"].created == []
    assert sorted((a.uid, a.id) for a in reports["second"].already_imported) == sorted(
        tasks.items()
    )
