"""Create the documented demo login with a realistic set of tasks (safe to run again)."""

import datetime as dt
import zoneinfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from tasks import services

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "tideline-demo"
DEMO_EMAIL = "demo@example.com"

CATEGORIES = [
    ("Work", "#2563eb"),
    ("Home", "#16a34a"),
    ("Health", "#dc2626"),
    ("Learning", "#9333ea"),
]


def _at(days: int, hour: int, minute: int = 0, *, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A local wall-clock time ``days`` from today."""
    day = timezone.now().astimezone(zone).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


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
                due_date=_at(1, 9, 30, zone=zone),
                recurrence_rule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                remind_before=dt.timedelta(minutes=10),
            ),
            dict(
                title="Pay rent",
                category="Home",
                priority="high",
                tags=["bills"],
                due_date=_at(5, 10, zone=zone),
                recurrence_rule="FREQ=MONTHLY;BYMONTHDAY=1",
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
                due_date=_at(2, 20, zone=zone),
                recurrence_rule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
            ),
            dict(
                title="Book dentist appointment",
                category="Health",
                priority="medium",
                tags=["calls"],
                due_date=_at(-5, 12, zone=zone),
            ),
            dict(
                title="30-minute run",
                category="Health",
                priority="low",
                tags=["exercise"],
                due_date=_at(1, 7, zone=zone),
                recurrence_rule="FREQ=DAILY;INTERVAL=2",
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
                due_date=_at(21, 9, zone=zone),
                remind_at=_at(14, 9, zone=zone),
                description="Photos, old passport, the form from the post office.",
            ),
            dict(title="Plan weekend trip", priority="low", tags=["travel"]),
        ]
        for sample in samples:
            category = sample.pop("category", None)
            services.task_create(
                user=user,
                category=categories[category] if category else None,
                timezone_name=zone_name,
                **sample,
            )
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
