"""Register the repeating reminder sweep job (idempotent: the job is overwritten)."""

from django.core.management.base import BaseCommand

from notifications.services import SWEEP_JOB_NAME, register_sweep_job


class Command(BaseCommand):
    help = f"Register the '{SWEEP_JOB_NAME}' job with the Dapr Scheduler (or the embedded one)."

    def handle(self, *args, **options):
        register_sweep_job()
        self.stdout.write(self.style.SUCCESS(f"Registered job '{SWEEP_JOB_NAME}'."))
