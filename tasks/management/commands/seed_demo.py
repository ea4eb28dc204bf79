"""Create the documented demo login with a realistic set of tasks (safe to run again)."""

import datetime as dt
import zoneinfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from notifications.models import DeliveryState
from notifications.services import delivery_record_past
from recurrence.engine import first_on_rule
from tasks import services
from todo_project.timezones import from_local_naive

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "tideline-demo"
DEMO_EMAIL = "demo@example.com"

WEEKDAYS = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
RENT = "FREQ=MONTHLY;BYMONTHDAY=1"
RECYCLING = "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH"
RUN = "FREQ=DAILY;INTERVAL=2"

CATEGORIES = [
    ("Work", "#2563eb"),
    ("Home", "#16a34a"),
    ("Health", "#dc2626"),
    ("Learning", "#9333ea"),
]


#: Tasks of a team and a trip elsewhere: the demo shows times in several zones.
NEW_YORK = "America/New_York"
TOKYO = "Asia/Tokyo"
PARIS = "Europe/Paris"


def _at(days: int, hour: int, minute: int = 0, *, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A local wall-clock time ``days`` from today."""
    day = timezone.now().astimezone(zone).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


def _on_rule(rule: str, days: int, hour: int, minute: int = 0, *, zone_name: str) -> dt.datetime:
    """The first occurrence of ``rule`` from ``days`` from today at that time, so that a
    series starts on its rule ("Pay rent" on the 1st, never first on the 5th)."""
    zone = zoneinfo.ZoneInfo(zone_name)
    start = _at(days, hour, minute, zone=zone).replace(tzinfo=None)
    return from_local_naive(first_on_rule(rule, start, zone_name), zone_name)


class Command(BaseCommand):
    help = f"Create the demo user '{DEMO_USERNAME}' (password '{DEMO_PASSWORD}') with sample tasks."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo user's tasks and create them anew.",
        )

    @transaction.atomic
    def handle(self, *args, reset: bool = False, **options):
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            user = services.user_register(
                username=DEMO_USERNAME, email=DEMO_EMAIL, password=DEMO_PASSWORD
            )
        elif reset:
            for task in user.tasks.all():
                services.task_delete(task=task)
        elif user.tasks.exists():
            self.stdout.write(
                f"Demo user '{DEMO_USERNAME}' already has tasks; nothing to do "
                "(use --reset to start over)."
            )
            return

        zone_name = settings.TIME_ZONE
        zone = zoneinfo.ZoneInfo(zone_name)
        categories = {}
        for name, color in CATEGORIES:
            categories[name] = user.categories.filter(
                name__iexact=name
            ).first() or services.category_create(user=user, name=name, color=color)

        samples = [
            dict(
                title="Prepare quarterly report",
                category="Work",
                priority="urgent",
                tags=["reports", "q4"],
                due_date=_at(-2, 17, zone=zone),
                remind_before=dt.timedelta(days=1),  # sent (below)
                description="Numbers from finance, charts from the dashboard.",
            ),
            dict(
                title="Review pull requests",
                category="Work",
                priority="high",
                tags=["code-review"],
                due_date=_at(0, 15, zone=zone),
                remind_before=dt.timedelta(minutes=30),
            ),
            dict(
                title="Team stand-up",
                category="Work",
                priority="medium",
                tags=["meetings"],
                timezone=NEW_YORK,  # the team's zone
                due_date=_on_rule(WEEKDAYS, 1, 9, 30, zone_name=NEW_YORK),
                recurrence_rule=WEEKDAYS,
                remind_before=dt.timedelta(minutes=10),
            ),
            dict(
                title="Call with the Tokyo office",
                category="Work",
                priority="high",
                tags=["meetings", "calls"],
                timezone=TOKYO,
                due_date=_at(3, 10, zone=zoneinfo.ZoneInfo(TOKYO)),
                description="Their 10:00: the roadmap for next quarter.",
            ),
            dict(
                title="Pay rent",
                category="Home",
                priority="high",
                tags=["bills"],
                due_date=_on_rule(RENT, 1, 10, zone_name=zone_name),
                recurrence_rule=RENT,
                remind_before=dt.timedelta(days=1),
            ),
            dict(
                title="Water the plants",
                category="Home",
                priority="low",
                tags=["chores"],
                due_date=_at(-1, 8, zone=zone),
                recurrence_type="weekly",
                recurrence_interval=1,
            ),
            dict(
                title="Take out the recycling",
                category="Home",
                priority="medium",
                tags=["chores"],
                due_date=_on_rule(RECYCLING, 2, 20, zone_name=zone_name),
                recurrence_rule=RECYCLING,
            ),
            dict(
                title="Book dentist appointment",
                category="Health",
                priority="medium",
                tags=["calls"],
                due_date=_at(-5, 12, zone=zone),
                remind_at=_at(-5, 9, zone=zone),  # missed (below)
            ),
            dict(
                title="30-minute run",
                category="Health",
                priority="low",
                tags=["exercise"],
                due_date=_on_rule(RUN, 1, 7, zone_name=zone_name),
                recurrence_rule=RUN,
                recurrence_mode="completion",
            ),
            dict(
                title="Finish Django REST framework tutorial",
                category="Learning",
                priority="medium",
                tags=["python", "django"],
                due_date=_at(7, 19, zone=zone),
            ),
            dict(
                title="Read 'Designing Data-Intensive Applications' ch. 11",
                category="Learning",
                priority="low",
                tags=["reading"],
            ),
            dict(
                title="Renew passport",
                priority="high",
                tags=["errands"],
                timezone=PARIS,  # at the consulate in Paris
                due_date=_at(21, 9, zone=zoneinfo.ZoneInfo(PARIS)),
                remind_at=_at(14, 9, zone=zoneinfo.ZoneInfo(PARIS)),
                description="Photos, old passport, the form from the post office.",
            ),
            dict(title="Plan weekend trip", priority="low", tags=["travel"]),
        ]
        created = {}
        for sample in samples:
            category = sample.pop("category", None)
            created[sample["title"]] = services.task_create(
                user=user,
                category=categories[category] if category else None,
                timezone_name=sample.pop("timezone", zone_name),
                **sample,
            )
        # Past reminders as they ended (the future ones are scheduled by the consumer).
        delivery_record_past(created["Prepare quarterly report"], state=DeliveryState.SENT)
        delivery_record_past(created["Book dentist appointment"], state=DeliveryState.MISSED)
        done = services.task_create(
            user=user,
            title="Set up Tideline",
            priority="medium",
            category=categories["Learning"],
            tags=["setup"],
            timezone_name=zone_name,
        )
        services.task_complete(task=done)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo user ready: log in as '{DEMO_USERNAME}' / '{DEMO_PASSWORD}' "
                f"({user.tasks.count()} tasks)."
            )
        )
