"""setup_schedules: create the periodic jobs (reaper, purge, monthly allowance) idempotently."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from ._base import OperatorCommand

# The allowance runs daily, not only on the 1st: each run credits the current month once per
# team (unique constraint), so a worker that was down on the 1st catches up on its next run.
SCHEDULES = (
    ("generator: reaper", "generator.tasks.reap_task", Schedule.MINUTES, 1),
    # The ticker thread of each qcluster ticks every second; this is its fallback.
    ("generator: ticker fallback", "generator.tasks.tick_task", Schedule.MINUTES, 1),
    (
        "generator: purge expired videos",
        "generator.tasks.purge_task",
        Schedule.HOURLY,
        None,
    ),
    (
        "generator: monthly allowance",
        "generator.tasks.allowance_task",
        Schedule.DAILY,
        None,
    ),
)


class Command(OperatorCommand):
    help = "Create or update the periodic jobs: reaper and ticker fallback (every minute), purge (hourly), allowance (daily catch-up)."

    def handle(self, *args, **options):
        now = timezone.now()
        with transaction.atomic():
            for name, func, schedule_type, minutes in SCHEDULES:
                fields = {
                    "func": func,
                    "schedule_type": schedule_type,
                    "minutes": minutes,
                    "repeats": -1,
                }
                existing = Schedule.objects.filter(name=name).order_by("pk")
                schedule = existing.first()
                if schedule is None:
                    Schedule.objects.create(name=name, next_run=now, **fields)
                    state = "created"
                else:
                    existing.exclude(pk=schedule.pk).delete()
                    changed = any(getattr(schedule, key) != value for key, value in fields.items())
                    if changed:
                        for key, value in fields.items():
                            setattr(schedule, key, value)
                        schedule.save()
                    state = "updated" if changed else "unchanged"
                self.stdout.write(f"{state}: {name} ({func})")
