"""Quick add: one line of text becomes a task (tasks/quickadd.py, the service and the API).

The table reads every phrase at a fixed moment, Tuesday 2026-12-01 10:00 in the user's
zone (Europe/Paris unless the case says America/New_York), when the default time of a date
without one (DEFAULT_DUE_TIME, 09:00) has already passed today.
"""

import datetime as dt
import zoneinfo

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from tasks import services
from tasks.models import Category, Tag, Task
from tasks.quickadd import EMPTY_TITLE_MESSAGE, MAX_TEXT_LENGTH, Chip, parse_quick_add

PARIS, NEW_YORK = "Europe/Paris", "America/New_York"
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)

NOTHING = {
    "priority": None,
    "due": None,
    "rule": "",
    "mode": "schedule",
    "category": None,
    "tags": [],
    "remind": None,
}


def case(text, *, zone=PARIS, id, **expected):
    """A phrase and what it gives; ``due`` and an absolute ``remind`` are local ISO times."""
    expected.setdefault("title", text)
    return pytest.param(zone, text, NOTHING | expected, id=id)


CASES = [
    # The five examples, verbatim.
    case(
        "Pay rent every month on the 1st at 9am #Home @bills p1",
        title="Pay rent",
        priority="urgent",
        due="2027-01-01T09:00:00+01:00",
        rule="FREQ=MONTHLY;BYMONTHDAY=1",
        category="Home",
        tags=["bills"],
        id="example-rent",
    ),
    case(
        "Call mum tomorrow 6pm",
        title="Call mum",
        due="2026-12-02T18:00:00+01:00",
        id="example-call-mum",
    ),
    case(
        "Stand-up every weekday at 9:30 @work",
        title="Stand-up",
        due="2026-12-02T09:30:00+01:00",  # 09:30 today has passed
        rule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        tags=["work"],
        id="example-stand-up",
    ),
    case(
        "Water plants every 3 days from completion",
        title="Water plants",
        due="2026-12-02T09:00:00+01:00",
        rule="FREQ=DAILY;INTERVAL=3",
        mode="completion",
        id="example-water-plants",
    ),
    case(
        "Report next friday !high remind 1 hour before",
        title="Report",
        priority="high",
        due="2026-12-04T09:00:00+01:00",
        remind=HOUR,
        id="example-report",
    ),
    # Dates and times.
    case("Dinner today 19:30", title="Dinner", due="2026-12-01T19:30:00+01:00", id="today-time"),
    case("Dinner today", title="Dinner", due="2026-12-01T23:59:00+01:00", id="today-said-late"),
    case(
        "Book tickets tonight", title="Book tickets", due="2026-12-01T19:00:00+01:00", id="tonight"
    ),
    case(
        "Book tickets tonight at 8:30",
        title="Book tickets",
        due="2026-12-01T20:30:00+01:00",
        id="tonight-at-8:30-is-evening",
    ),
    case("Dentist on friday", title="Dentist", due="2026-12-04T09:00:00+01:00", id="on-weekday"),
    case(
        "Dentist on fri at 15:15",
        title="Dentist",
        due="2026-12-04T15:15:00+01:00",
        id="on-abbreviated-weekday",
    ),
    case("Gym tuesday", title="Gym", due="2026-12-08T09:00:00+01:00", id="weekday-of-today"),
    case("Plan next monday", title="Plan", due="2026-12-07T09:00:00+01:00", id="next-monday"),
    case(
        "Pick up parcel in 3 days",
        title="Pick up parcel",
        due="2026-12-04T09:00:00+01:00",
        id="in-3-days",
    ),
    case(
        "Renew passport in two weeks",
        title="Renew passport",
        due="2026-12-15T09:00:00+01:00",
        id="in-two-weeks",
    ),
    case("Ping Sam in 2 hours", title="Ping Sam", due="2026-12-01T12:00:00+01:00", id="in-2-hours"),
    case("Stretch in 30 minutes", title="Stretch", due="2026-12-01T10:30:00+01:00", id="in-30-min"),
    case(
        "Dentist on 5 March at 10:30",
        title="Dentist",
        due="2027-03-05T10:30:00+01:00",
        id="on-day-month",
    ),
    case(
        "Anniversary march 5th",
        title="Anniversary",
        due="2027-03-05T09:00:00+01:00",
        id="month-day",
    ),
    case("Exam 2027-01-15", title="Exam", due="2027-01-15T09:00:00+01:00", id="iso-date"),
    case(
        "Lunch with Jo at noon", title="Lunch with Jo", due="2026-12-01T12:00:00+01:00", id="noon"
    ),
    case(
        "Meeting at 9am", title="Meeting", due="2026-12-02T09:00:00+01:00", id="past-time-tomorrow"
    ),
    case("Meeting 3pm", title="Meeting", due="2026-12-01T15:00:00+01:00", id="time-later-today"),
    case(
        "Submit report by 5pm",
        title="Submit report",
        due="2026-12-01T17:00:00+01:00",
        id="by-time",
    ),
    case(
        "Submit claim by midnight",
        title="Submit claim",
        due="2026-12-01T23:59:00+01:00",
        id="midnight-is-end-of-day",
    ),
    case(
        "Party day after tomorrow",
        title="Party",
        due="2026-12-03T09:00:00+01:00",
        id="day-after-tomorrow",
    ),
    case(
        "Budget review next week",
        title="Budget review",
        due="2026-12-08T09:00:00+01:00",
        id="next-week-is-a-week-from-today",
    ),
    case(
        "Party on 1 December at 8pm",
        title="Party",
        due="2026-12-01T20:00:00+01:00",
        id="todays-date-is-today-not-next-year",
    ),
    case("Pay bills 31 december", title="Pay bills", due="2026-12-31T09:00:00+01:00", id="dec-31"),
    case("Trip in 1 month", title="Trip", due="2027-01-01T09:00:00+01:00", id="in-1-month"),
    case("Leap 29 february", title="Leap", due="2028-02-29T09:00:00+01:00", id="next-feb-29"),
    case(
        "Call Grandma on 29 march at 9am",
        title="Call Grandma",
        due="2027-03-29T09:00:00+02:00",
        id="dst-summer-time-offset",
    ),
    case(
        "Clocks change 2027-03-28 at 2:30am",
        title="Clocks change",
        due="2027-03-28T03:30:00+02:00",
        id="dst-gap-moves-forward",
    ),
    case(
        "Night shift 2027-10-31 at 2:30am",
        title="Night shift",
        due="2027-10-31T02:30:00+02:00",
        id="dst-ambiguous-takes-first",
    ),
    # Repeats.
    case(
        "Gym every monday and thursday at 7am",
        title="Gym",
        due="2026-12-03T07:00:00+01:00",
        rule="FREQ=WEEKLY;BYDAY=MO,TH",
        id="every-monday-and-thursday",
    ),
    case(
        "Team lunch every last friday at noon",
        title="Team lunch",
        due="2026-12-25T12:00:00+01:00",
        rule="FREQ=MONTHLY;BYDAY=-1FR",
        id="every-last-friday",
    ),
    case(
        "Board meeting every first monday",
        title="Board meeting",
        due="2026-12-07T09:00:00+01:00",
        rule="FREQ=MONTHLY;BYDAY=1MO",
        id="every-first-monday",
    ),
    case(
        "Birthday every year on 3 march",
        title="Birthday",
        due="2027-03-03T09:00:00+01:00",
        rule="FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3",
        id="every-year-on-date",
    ),
    case(
        "Pay card every month on the last day",
        title="Pay card",
        due="2026-12-31T09:00:00+01:00",
        rule="FREQ=MONTHLY;BYMONTHDAY=-1",
        id="month-end-last-day",
    ),
    case(
        "Rent every month on the 31st",
        title="Rent",
        due="2026-12-31T09:00:00+01:00",
        rule="FREQ=MONTHLY;BYMONTHDAY=31",
        id="month-end-31st",
    ),
    case(
        "Invoice every 2 weeks on mon",
        title="Invoice",
        due="2026-12-07T09:00:00+01:00",
        rule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO",
        id="every-2-weeks-on-monday",
    ),
    case(
        "Pay every 15th",
        title="Pay",
        due="2026-12-15T09:00:00+01:00",
        rule="FREQ=MONTHLY;BYMONTHDAY=15",
        id="every-15th",
    ),
    case(
        "Walk every weekend",
        title="Walk",
        due="2026-12-05T09:00:00+01:00",
        rule="FREQ=WEEKLY;BYDAY=SA,SU",
        id="every-weekend",
    ),
    case(
        "Take pills every day at 8pm",
        title="Take pills",
        due="2026-12-01T20:00:00+01:00",
        rule="FREQ=DAILY",
        id="every-day-later-today",
    ),
    case(
        "Backup daily at 2am",
        title="Backup",
        due="2026-12-02T02:00:00+01:00",
        rule="FREQ=DAILY",
        id="daily",
    ),
    case(
        "Water plants weekly",
        title="Water plants",
        due="2026-12-02T09:00:00+01:00",
        rule="FREQ=WEEKLY",
        id="weekly-after-the-title",
    ),
    case(
        "Review every other week",
        title="Review",
        due="2026-12-02T09:00:00+01:00",
        rule="FREQ=WEEKLY;INTERVAL=2",
        id="every-other-week",
    ),
    case(
        "Run every! 2 days",
        title="Run",
        due="2026-12-02T09:00:00+01:00",
        rule="FREQ=DAILY;INTERVAL=2",
        mode="completion",
        id="every-bang-is-after-completion",
    ),
    case(
        "Clean gutters every 3 months after completion",
        title="Clean gutters",
        due="2026-12-02T09:00:00+01:00",
        rule="FREQ=MONTHLY;INTERVAL=3",
        mode="completion",
        id="after-completion",
    ),
    case(
        "Call dad every sunday at 6pm",
        title="Call dad",
        due="2026-12-06T18:00:00+01:00",
        rule="FREQ=WEEKLY;BYDAY=SU",
        id="every-sunday",
    ),
    case(
        "Stand-up every weekday at 9:30 starting 2027-01-04",
        title="Stand-up",
        due="2027-01-04T09:30:00+01:00",
        rule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        id="repeat-with-explicit-start",
    ),
    case(
        "Run every other day",
        title="Run",
        due="2026-12-02T09:00:00+01:00",
        rule="FREQ=DAILY;INTERVAL=2",
        id="every-other-day",
    ),
    case(
        "Swim every other tuesday",
        title="Swim",
        due="2026-12-08T09:00:00+01:00",
        rule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
        id="every-other-tuesday",
    ),
    case(
        "Gym every mon, wed and fri",
        title="Gym",
        due="2026-12-02T09:00:00+01:00",
        rule="FREQ=WEEKLY;BYDAY=MO,WE,FR",
        id="weekday-list",
    ),
    case(
        "Tax every 2nd tuesday",
        title="Tax",
        due="2026-12-08T09:00:00+01:00",
        rule="FREQ=MONTHLY;BYDAY=2TU",
        id="every-2nd-tuesday",
    ),
    case(
        "Gift every march 3rd",
        title="Gift",
        due="2027-03-03T09:00:00+01:00",
        rule="FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3",
        id="every-month-day",
    ),
    case("Weekly report", id="weekly-as-first-word-is-title"),
    case(
        "Weekly report every friday",
        title="Weekly report",
        due="2026-12-04T09:00:00+01:00",
        rule="FREQ=WEEKLY;BYDAY=FR",
        id="weekly-in-title-and-a-repeat",
    ),
    case("Check alarm every 30 february", id="impossible-repeat-stays-in-title"),
    case("Buy milk every 0 days", id="every-0-days-stays-in-title"),
    case("Buy milk every 0 weeks", id="every-0-weeks-stays-in-title"),
    case("Buy milk every 0 mondays", id="every-0-mondays-stays-in-title"),
    case("Buy milk every 1001 days", id="interval-over-1000-stays-in-title"),
    case(
        "Buy milk every 1000 days",
        title="Buy milk",
        due="2026-12-02T09:00:00+01:00",
        rule="FREQ=DAILY;INTERVAL=1000",
        id="interval-of-1000-repeats",
    ),
    case("Write from completion", id="completion-without-repeat-stays-in-title"),
    # Reminders.
    case(
        "Call mum tomorrow 6pm remind me 30 minutes before",
        title="Call mum",
        due="2026-12-02T18:00:00+01:00",
        remind=dt.timedelta(minutes=30),
        id="remind-minutes-before",
    ),
    case(
        "Flight on friday at 7am remind 2 days before",
        title="Flight",
        due="2026-12-04T07:00:00+01:00",
        remind=2 * DAY,
        id="remind-days-before",
    ),
    case(
        "Call bank tomorrow 6pm remind at 8am",
        title="Call bank",
        due="2026-12-02T18:00:00+01:00",
        remind="2026-12-02T08:00:00+01:00",
        id="remind-at-time-on-due-day",
    ),
    case(
        "Pay bill on friday remind me tomorrow 8am",
        title="Pay bill",
        due="2026-12-04T09:00:00+01:00",
        remind="2026-12-02T08:00:00+01:00",
        id="remind-tomorrow-at",
    ),
    case(
        "Call dad tomorrow 6pm remind me 1h before",
        title="Call dad",
        due="2026-12-02T18:00:00+01:00",
        remind=HOUR,
        id="remind-compact-offset",
    ),
    # Categories, tags and priorities.
    case(
        "Side gig #Side project tomorrow",
        title="Side gig",
        due="2026-12-02T09:00:00+01:00",
        category="Side project",
        id="multi-word-category",
    ),
    case("Buy milk #home", title="Buy milk", category="Home", id="category-any-case"),
    case("Buy milk #groceries", title="Buy milk", category="groceries", id="new-category"),
    case("Fix bug #123 in C# module", id="hash-number-and-c-sharp-stay"),
    case("Convert mp3 files p2", title="Convert mp3 files", priority="high", id="mp3-stays"),
    case("Draft p5 plan", id="p5-is-not-a-priority"),
    case(
        "Email bob@example.com @work @errands",
        title="Email bob@example.com",
        tags=["work", "errands"],
        id="email-stays-tags-go",
    ),
    case(
        "Tidy desk @work @WORK @focus", title="Tidy desk", tags=["work", "focus"], id="tags-dedup"
    ),
    case(
        "Sort @post,bills @home,",
        title="Sort @post,bills",
        tags=["home"],
        id="tag-with-comma-stays",
    ),
    case("Pay taxes !urgent", title="Pay taxes", priority="urgent", id="bang-urgent"),
    case("Decide later P1 p3", title="Decide later p3", priority="urgent", id="first-priority"),
    # Words that only look like dates stay in the title.
    case("Buy may flowers", id="may-without-a-day"),
    case("Email Monday's notes", id="possessive-weekday"),
    case("Buy sun cream", id="sun-is-not-sunday"),
    case("Send Jan the report", id="jan-without-a-day"),
    case("Look at 3 options", id="bare-number-is-not-a-time"),
    case("Every little thing", id="every-without-a-repeat"),
    case("Fix typo on 31 april", id="impossible-date"),
    case('Read "next friday" article', id="quoted-words-are-literal"),
    case(
        'Watch "Friday Night Lights" tonight',
        title='Watch "Friday Night Lights"',
        due="2026-12-01T19:00:00+01:00",
        id="quoted-title-and-a-date",
    ),
    case("Just a title", id="nothing-but-title"),
    case("  lots   of   space  ", title="lots of space", id="whitespace-tidied"),
    # New York.
    case(
        "Call mum tomorrow 6pm",
        zone=NEW_YORK,
        title="Call mum",
        due="2026-12-02T18:00:00-05:00",
        id="ny-tomorrow",
    ),
    case(
        "Standup every weekday at 9am @work",
        zone=NEW_YORK,
        title="Standup",
        due="2026-12-02T09:00:00-05:00",
        rule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        tags=["work"],
        id="ny-weekday",
    ),
    case(
        "Flight 15 march 9am",
        zone=NEW_YORK,
        title="Flight",
        due="2027-03-15T09:00:00-04:00",
        id="ny-after-dst",
    ),
    case(
        "Taxes on 14 march at 2:30am",
        zone=NEW_YORK,
        title="Taxes",
        due="2027-03-14T03:30:00-04:00",
        id="ny-dst-gap",
    ),
]


def in_zone(user, zone: str):
    """``user`` with this profile zone, read afresh as a request would."""
    services.profile_update(user=user, data={"timezone": zone})
    return get_user_model().objects.get(pk=user.pk)


def at_ten(zone: str) -> dt.datetime:
    """Tuesday 2026-12-01 10:00 in ``zone``."""
    return dt.datetime(2026, 12, 1, 10, 0, tzinfo=zoneinfo.ZoneInfo(zone))


@pytest.fixture(autouse=True)
def _default_time(settings):
    settings.DEFAULT_DUE_TIME = dt.time(9, 0)  # what the table expects, whatever the env says


@pytest.fixture
def paris_alice(alice, make_category):
    for name in ("Home", "Side project", "Work"):
        make_category(alice, name=name)
    return in_zone(alice, PARIS)


def summary(parsed) -> dict:
    remind = parsed.remind_before
    if parsed.remind_at is not None:
        remind = parsed.remind_at.isoformat()
    return {
        "title": parsed.title,
        "priority": parsed.priority,
        "due": parsed.due_date.isoformat() if parsed.due_date else None,
        "rule": parsed.recurrence_rule,
        "mode": parsed.recurrence_mode,
        "category": parsed.category_name,
        "tags": parsed.tags,
        "remind": remind,
    }


@pytest.mark.parametrize(("zone", "text", "expected"), CASES)
def test_quick_add_reads(paris_alice, zone, text, expected):
    user = in_zone(paris_alice, zone) if zone != PARIS else paris_alice

    parsed = parse_quick_add(text, user=user, now=at_ten(zone))

    assert summary(parsed) == expected
    assert parsed.timezone == zone


def test_an_existing_category_is_the_users_own_object(paris_alice):
    parsed = parse_quick_add("Buy milk #HOME", user=paris_alice, now=at_ten(PARIS))

    assert parsed.category == Category.objects.get(user=paris_alice, name="Home")
    assert not parsed.category_is_new


def test_a_category_is_read_with_one_query(paris_alice, django_assert_num_queries):
    paris_alice.profile  # noqa: B018 - the profile is read once per request anyway

    with django_assert_num_queries(1):
        parse_quick_add("Plan #Side project launch #Work", user=paris_alice, now=at_ten(PARIS))
    with django_assert_num_queries(0):
        parse_quick_add("Plan launch tomorrow @work p1", user=paris_alice, now=at_ten(PARIS))


def test_the_chips_label_each_part(paris_alice):
    text = "Pay rent every month on the 1st at 9am #Home @bills p1"

    chips = parse_quick_add(text, user=paris_alice, now=at_ten(PARIS)).chips()

    assert chips == [
        Chip("due", "Fri 1 Jan 2027 09:00"),
        Chip("repeat", "every month on the 1st"),
        Chip("priority", "Urgent (p1)"),
        Chip("category", "#Home"),
        Chip("tag", "@bills"),
    ]


def test_the_chips_say_tomorrow_and_mark_a_new_category(paris_alice):
    text = "Call mum tomorrow 6pm remind 1 hour before !high #Family @phone"

    chips = parse_quick_add(text, user=paris_alice, now=at_ten(PARIS)).chips()

    assert [(chip.kind, chip.label) for chip in chips] == [
        ("due", "Tomorrow 18:00"),
        ("reminder", "1 hour before"),
        ("priority", "High (p2)"),
        ("category", "#Family (new)"),
        ("tag", "@phone"),
    ]


def test_the_chips_show_the_repeat_mode(paris_alice):
    parsed = parse_quick_add(
        "Water plants every 3 days from completion", user=paris_alice, now=at_ten(PARIS)
    )

    assert [(chip.kind, chip.label) for chip in parsed.chips()] == [
        ("due", "Tomorrow 09:00"),
        ("repeat", "every 3 days"),
        ("mode", "after completion"),
    ]


def test_the_first_occurrences_of_a_repeat(paris_alice):
    parsed = parse_quick_add(
        "Team lunch every last friday at noon", user=paris_alice, now=at_ten(PARIS)
    )

    assert [o.isoformat() for o in parsed.occurrences(3)] == [
        "2026-12-25T12:00:00+01:00",
        "2027-01-29T12:00:00+01:00",
        "2027-02-26T12:00:00+01:00",
    ]


def test_the_default_time_is_a_setting(paris_alice, settings):
    settings.DEFAULT_DUE_TIME = dt.time(7, 30)

    parsed = parse_quick_add("Call mum tomorrow", user=paris_alice, now=at_ten(PARIS))

    assert parsed.due_date.isoformat() == "2026-12-02T07:30:00+01:00"


def test_text_over_the_limit_is_refused_naming_text(paris_alice):
    parse_quick_add("x" * MAX_TEXT_LENGTH, user=paris_alice)

    with pytest.raises(ValidationError) as error:
        parse_quick_add("x" * (MAX_TEXT_LENGTH + 1), user=paris_alice)

    assert list(error.value.message_dict) == ["text"]


def test_validate_asks_for_a_title_when_there_are_only_tokens(paris_alice):
    parsed = parse_quick_add("@work p1 tomorrow", user=paris_alice)

    with pytest.raises(ValidationError) as error:
        parsed.validate()

    assert error.value.message_dict == {"text": [EMPTY_TITLE_MESSAGE]}


def test_validate_refuses_a_reminder_offset_without_a_due_date(paris_alice):
    parsed = parse_quick_add("Call mum remind 1 hour before", user=paris_alice)

    with pytest.raises(ValidationError) as error:
        parsed.validate()

    assert error.value.message_dict == {"text": ["A reminder offset needs a due date."]}


# --- the service ------------------------------------------------------------------------------


def test_task_quick_add_creates_the_task_with_its_category_and_tags(paris_alice):
    task = services.task_quick_add(
        user=paris_alice,
        text="Pay rent every month on the 1st at 9am #Home @bills p1",
        now=at_ten(PARIS),
    )

    task.refresh_from_db()
    assert task.user == paris_alice
    assert task.title == "Pay rent"
    assert task.priority == "urgent"
    assert task.category == Category.objects.get(user=paris_alice, name="Home")
    assert task.tag_names() == ["bills"]
    assert task.recurrence_rule == "FREQ=MONTHLY;BYMONTHDAY=1"
    assert task.timezone == PARIS
    assert task.due_date == dt.datetime(2027, 1, 1, 8, 0, tzinfo=dt.UTC)


def test_task_quick_add_derives_the_reminder_from_the_offset(paris_alice):
    task = services.task_quick_add(
        user=paris_alice, text="Report next friday remind 1 hour before", now=at_ten(PARIS)
    )

    assert task.remind_before == HOUR
    assert task.remind_at == dt.datetime(2026, 12, 4, 7, 0, tzinfo=dt.UTC)  # 08:00 Paris


def test_task_quick_add_creates_an_unknown_category(paris_alice):
    task = services.task_quick_add(user=paris_alice, text="Buy milk #Groceries")

    assert task.category.name == "Groceries"
    assert task.category.user == paris_alice


def test_a_refused_quick_add_creates_no_category(paris_alice):
    with pytest.raises(ValidationError) as error:
        services.task_quick_add(user=paris_alice, text="Call #Family remind 1 hour before")

    assert list(error.value.message_dict) == ["text"]
    assert not Category.objects.filter(name="Family").exists()
    assert not Task.objects.exists()


# --- the API ----------------------------------------------------------------------------------

QUICK_ADD, PARSE = "/api/tasks/quick-add/", "/api/tasks/parse/"


@pytest.fixture
def paris_api(api, paris_alice):
    return api


def test_api_quick_add_answers_201_with_the_task(paris_api, paris_alice):
    response = paris_api.post(
        QUICK_ADD, {"text": "Pay rent 2030-01-15 at 9am every month #home @bills p1"}
    )

    assert response.status_code == 201
    body = response.json()
    home = Category.objects.get(user=paris_alice, name="Home")
    assert body["title"] == "Pay rent"
    assert body["priority"] == "urgent"
    assert body["due_date"] == "2030-01-15T09:00:00+01:00"
    assert body["timezone"] == PARIS
    assert body["category"] == home.pk
    assert body["tags"] == ["bills"]
    assert body["recurrence_rule"] == "FREQ=MONTHLY"
    assert body["recurrence_description"] == "every month"
    assert Task.objects.get(pk=body["id"]).user == paris_alice


def test_api_quick_add_creates_an_unknown_category_for_the_user(paris_api, paris_alice):
    response = paris_api.post(QUICK_ADD, {"text": "Buy milk #Groceries @shop"})

    assert response.status_code == 201
    category = Category.objects.get(pk=response.json()["category"])
    assert (category.name, category.user) == ("Groceries", paris_alice)
    assert Tag.objects.filter(user=paris_alice, name="shop").exists()


def test_api_parse_answers_what_would_be_created_and_saves_nothing(paris_api):
    before = (Task.objects.count(), Category.objects.count(), Tag.objects.count())

    response = paris_api.post(
        PARSE, {"text": "Stand-up 2030-01-14 at 9:30 every weekday #Meetings @work !high"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Stand-up"
    assert body["priority"] == "high"
    assert body["due_date"] == "2030-01-14T09:30:00+01:00"
    assert body["category"] is None
    assert body["category_name"] == "Meetings"
    assert body["category_is_new"] is True
    assert body["tags"] == ["work"]
    assert body["recurrence_rule"] == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    assert body["recurrence_description"] == "every weekday"
    assert body["occurrences"][:2] == ["2030-01-14T09:30:00+01:00", "2030-01-15T09:30:00+01:00"]
    assert {"kind": "category", "label": "#Meetings (new)"} in body["chips"]
    assert (Task.objects.count(), Category.objects.count(), Tag.objects.count()) == before


def test_api_parse_names_an_existing_category_by_id(paris_api, paris_alice):
    response = paris_api.post(PARSE, {"text": "Plan #Side project launch"})

    assert response.json()["category"] == Category.objects.get(name="Side project").pk
    assert response.json()["title"] == "Plan launch"


@pytest.mark.parametrize("path", [QUICK_ADD, PARSE])
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"text": ""}, "This field may not be blank."),
        ({}, "This field is required."),
        ({"text": "x" * (MAX_TEXT_LENGTH + 1)}, "no more than 500 characters"),
        ({"text": "@work p1"}, EMPTY_TITLE_MESSAGE),
        ({"text": "Call mum remind 1 hour before"}, "A reminder offset needs a due date."),
    ],
    ids=["empty", "missing", "too-long", "only-tokens", "reminder-without-date"],
)
def test_api_bad_text_is_400_naming_text(paris_api, path, payload, message):
    response = paris_api.post(path, payload)

    assert response.status_code == 400
    assert list(response.json()) == ["text"]
    assert message in response.json()["text"][0]
    assert not Task.objects.exists()


@pytest.mark.parametrize("path", [QUICK_ADD, PARSE])
def test_api_unknown_keys_are_400(paris_api, path):
    response = paris_api.post(path, {"text": "Call mum", "priority": "high"})

    assert response.status_code == 400
    assert response.json() == {"priority": ["Unknown field."]}


@pytest.mark.parametrize("path", [QUICK_ADD, PARSE])
def test_api_anonymous_is_401(anon_api, db, path):
    assert anon_api.post(path, {"text": "Call mum"}).status_code == 401


def test_bob_gets_his_own_category_not_alices(paris_alice, bob_api, bob):
    alice_home = Category.objects.get(user=paris_alice, name="Home")

    response = bob_api.post(QUICK_ADD, {"text": "Fix sink #Home"})

    assert response.status_code == 201
    category = Category.objects.get(pk=response.json()["category"])
    assert category.user == bob
    assert category.pk != alice_home.pk
    assert Category.objects.filter(name="Home").count() == 2


def test_bob_uses_his_existing_category_of_the_same_name(paris_alice, bob_api, bob, make_category):
    bobs_home = make_category(bob, name="home")

    response = bob_api.post(PARSE, {"text": "Fix sink #Home"})

    assert response.json()["category"] == bobs_home.pk
    assert response.json()["category_name"] == "home"


def test_the_schema_documents_quick_add_and_parse(anon_api, db):
    schema = anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    quick_add = schema["paths"]["/api/tasks/quick-add/"]["post"]
    parse = schema["paths"]["/api/tasks/parse/"]["post"]
    assert "201" in quick_add["responses"]
    assert parse["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/QuickAddPreview"
    }
