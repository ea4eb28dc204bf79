"""Replay dead letters: run each one's consumer again on its stored CloudEvent."""

from django.core.management.base import BaseCommand, CommandError

from events.dispatch import ReplayResult, replay
from events.models import DeadLetter, FailureState


class Command(BaseCommand):
    help = (
        "Run the consumer of each chosen dead letter again on its stored CloudEvent, through"
        " the same idempotent path as a delivery. A success marks it replayed; a failure keeps"
        " it dead with the new error. Replaying an event the consumer already handled does"
        " nothing; a replayed dead letter is not replayed again."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="Dead letter ids (the admin's).")
        parser.add_argument("--consumer", help="Every dead letter of this consumer name.")
        parser.add_argument("--all", action="store_true", dest="every", help="Every dead letter.")

    def handle(self, *args, ids, consumer, every, **options):
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
        counts = dict.fromkeys(ReplayResult, 0)
        for letter in letters.iterator():
            result = replay(letter)
            counts[result] += 1
            letter.refresh_from_db()
            self.stdout.write(
                f"{result} #{letter.pk} {letter.consumer} {letter.event_type} {letter.event_id}"
                + (f": {letter.last_error[:200]}" if result is ReplayResult.FAILED else "")
            )
        self.stdout.write(
            f"{counts[ReplayResult.REPLAYED]} replayed, {counts[ReplayResult.FAILED]} failed"
            f" (still dead), {counts[ReplayResult.SKIPPED]} skipped (not dead)."
        )
        if counts[ReplayResult.FAILED]:
            raise CommandError(f"{counts[ReplayResult.FAILED]} dead letter(s) failed again.")
