"""Replay dead letters: put each back in line, for its consumer's role to run again."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.dispatch import ReplayResult, replay, served_consumer
from events.models import DeadLetter, FailureState


class Command(BaseCommand):
    help = (
        "Put each chosen dead letter back in line with a fresh budget (EVENT_MAX_ATTEMPTS):"
        " the process serving its consumer's role runs it on its next retry pass, through the"
        " same idempotent path as a delivery. --now runs it here at once, which needs this"
        " process to serve that role. A dead letter already put back is skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="Dead letter ids (the admin's).")
        parser.add_argument("--consumer", help="Every dead letter of this consumer name.")
        parser.add_argument("--all", action="store_true", dest="every", help="Every dead letter.")
        parser.add_argument(
            "--now",
            action="store_true",
            help="Run each one here at once (this process must serve its consumer's role).",
        )

    def handle(self, *args, ids, consumer, every, now, **options):
        if sum((bool(ids), bool(consumer), every)) != 1:
            raise CommandError("Name dead letter ids, or --consumer NAME, or --all (one of them).")
        letters = DeadLetter.objects.order_by("dead_at", "id")
        if ids:
            letters = letters.filter(pk__in=ids)
            unknown = sorted(set(ids) - set(letters.values_list("pk", flat=True)))
            if unknown:
                raise CommandError(f"No dead letter with id {', '.join(map(str, unknown))}.")
        else:
            letters = letters.filter(state=FailureState.DEAD)
            if consumer:
                letters = letters.filter(consumer=consumer)
        if now:
            for name in sorted(set(letters.values_list("consumer", flat=True))):
                try:
                    served_consumer(name)
                except LookupError as exc:
                    raise CommandError(
                        f"--now cannot run it here: {exc}. Run the command where that role is"
                        " served, or leave out --now and that process runs it within"
                        f" {settings.RELAY_SWEEP_SECONDS:g} s."
                    ) from exc
        counts = dict.fromkeys(ReplayResult, 0)
        for letter in letters.iterator():
            result = replay(letter, run_now=now)
            counts[result] += 1
            letter.refresh_from_db()
            self.stdout.write(
                f"{result} #{letter.pk} {letter.consumer} {letter.event_type} {letter.event_id}"
                + (
                    f" ({letter.state}): {letter.last_error[:200]}"
                    if result is ReplayResult.FAILED
                    else ""
                )
            )
        summary = (
            f"{counts[ReplayResult.QUEUED]} put back in line, {counts[ReplayResult.SKIPPED]}"
            " skipped (not dead)."
        )
        if now:
            summary = (
                f"{counts[ReplayResult.REPLAYED]} replayed, {counts[ReplayResult.FAILED]} failed"
                f" again, {summary}"
            )
        self.stdout.write(summary)
        if counts[ReplayResult.FAILED]:
            raise CommandError(f"{counts[ReplayResult.FAILED]} dead letter(s) failed again.")
