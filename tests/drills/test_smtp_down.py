"""Drill: the SMTP server is down while reminders fall due; each is e-mailed once when it returns.

A reminder that cannot be sent goes back to due with a backoff (REMINDER_RETRY_BASE_SECONDS,
doubling) and is retried by the sweep until it is sent, or fails for good after
REMINDER_MAX_ATTEMPTS. Here the base is 1 s (the app's default is 30 s) so that the drill is
short; the outage stays well inside the budget (1 + 2 + 4 + 8 s).
"""

from __future__ import annotations

import time

import pytest

from tests.drills.conftest import Stopwatch, World, report
from tests.events.test_topology import in_seconds, iso

pytestmark = [pytest.mark.slow, pytest.mark.drill]

REMINDERS = 20
RECOVERY_BOUND = 20.0  # seconds from the SMTP server's return to the last e-mail


def test_smtp_down_while_reminders_fall_due_sends_each_exactly_once_when_it_returns(
    world_ready: World,
) -> None:
    world = world_ready
    world.smtp.stop()
    down = Stopwatch()
    try:
        remind_at = in_seconds(3)
        task_ids = [
            world.create_task(
                f"Drill reminder {n}",
                due_date=iso(in_seconds(3600)),
                remind_at=iso(remind_at),
            )
            for n in range(REMINDERS)
        ]

        def failed_once() -> bool:
            [(count,)] = world.query(
                "SELECT count(*) FROM notifications_reminderdelivery"
                " WHERE task_id = ANY(%s) AND state = 'due' AND attempts >= 1",
                task_ids,
            )
            return count == REMINDERS

        world.wait_until("every reminder fails once to reach the SMTP server", failed_once, 30)
        [(errors,)] = world.query(
            "SELECT array_agg(DISTINCT last_error) FROM notifications_reminderdelivery"
            " WHERE task_id = ANY(%s)",
            task_ids,
        )
        assert all("Connection refused" in error for error in errors), errors
        assert all(world.emails_for(task_id) == [] for task_id in task_ids)
    finally:
        world.smtp.start()
    outage = down()
    back = Stopwatch()

    world.wait_until(
        "every reminder e-mail arrives",
        lambda: all(world.emails_for(task_id) for task_id in task_ids),
        60,
    )
    recovered = back()
    time.sleep(4)  # the sweep (every 2 s) and the retries have looked at every one since
    counts = [len(world.emails_for(task_id)) for task_id in task_ids]
    [(sent, attempts)] = world.query(
        "SELECT count(*) FILTER (WHERE state = 'sent'), max(attempts)"
        " FROM notifications_reminderdelivery WHERE task_id = ANY(%s)",
        task_ids,
    )
    report(
        "smtp-down",
        reminders=REMINDERS,
        outage_seconds=outage,
        emails=sum(counts),
        duplicates=sum(c - 1 for c in counts if c > 1),
        missing=counts.count(0),
        max_attempts=attempts,
        recovery_seconds=recovered,
    )
    assert counts == [1] * REMINDERS  # exactly one e-mail each
    assert sent == REMINDERS
    assert recovered < RECOVERY_BOUND
