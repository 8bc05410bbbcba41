"""Which job a free worker takes, and taking it: the fair rotation between teams (docs/queue.md).

A run task is a slot, not a job: it names no generation. The worker asks the rotation
(selectors.queue_rotation) for the team whose turn it is and takes that team's oldest queued job
with a conditional update (state and attempt guard, a lease), so one team's long queue delays
another team's job by at most one job per worker. A slot that finds nothing queued does nothing.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from generator import selectors
from generator.models import Generation

# Rotations looked at before giving up: a claim that loses a race moves on to the next team.
CLAIM_ROUNDS = 5

Status = Generation.Status
Stage = Generation.Stage


def generation_claim(generation_id: int) -> int | None:
    """Take the job with a conditional update; return our attempt number, or None if not ours."""
    now = timezone.now()
    updated = (
        Generation.objects.filter(
            pk=generation_id,
            status=Status.PROCESSING,
            deleted_at__isnull=True,
            attempts__lt=settings.GENERATOR_MAX_ATTEMPTS,
        )
        .filter(Q(stage=Stage.QUEUED) | Q(lease_expires_at__lt=now))
        .update(
            attempts=F("attempts") + 1,
            stage=Stage.FETCHING,
            progress=0,
            started_at=now,
            lease_expires_at=now + timedelta(seconds=settings.GENERATOR_LEASE_S),
            updated_at=now,
        )
    )
    if not updated:
        return None
    return Generation.objects.filter(pk=generation_id).values_list("attempts", flat=True).first()


def generation_claim_next() -> tuple[int, int] | None:
    """Claim the next job in fair order; return (pk, attempt), or None when nothing is queued."""
    for _ in range(CLAIM_ROUNDS):
        rotation = selectors.queue_rotation()
        if not rotation:
            return None
        for entry in rotation:
            head = selectors.queue_head(team_id=entry.team_id)
            if head is None:
                continue
            attempt = generation_claim(head)
            if attempt is not None:
                return head, attempt
            # Another worker took this team's head: the team has just started a job, so the next
            # team of this rotation is the right one to try.
    return None
