"""The reaper: jobs whose worker died are retried or failed with a refund, never left running."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from generator.models import Generation
from generator.services.generations import RUN_TASK, queued_stale_s
from generator.services.queue import enqueue_on_commit
from generator.services.worker import generation_fail

logger = logging.getLogger(__name__)

Status = Generation.Status
Stage = Generation.Stage
WORKER_DIED = "the worker stopped while making the video and no attempts are left; the credits were refunded"


@dataclass(frozen=True)
class ReapReport:
    requeued: int = 0
    failed: int = 0
    reenqueued: int = 0


def generations_reap(*, now: datetime | None = None) -> ReapReport:
    """Re-queue or fail jobs whose lease ran out; re-enqueue queued jobs the broker seems to have lost."""
    now = now or timezone.now()
    max_attempts = settings.GENERATOR_MAX_ATTEMPTS
    next_deadline = now + timedelta(seconds=queued_stale_s())
    requeued = failed = reenqueued = 0
    expired = Generation.objects.filter(status=Status.PROCESSING, deleted_at__isnull=True).filter(
        Q(lease_expires_at__lt=now)
        | Q(
            lease_expires_at__isnull=True,
            stage=Stage.QUEUED,
            created_at__lt=now - timedelta(seconds=queued_stale_s()),
        )
    )
    for pk, stage, attempts in expired.values_list("pk", "stage", "attempts").order_by("pk")[:1000]:
        # Each change re-checks the state it read, so a worker that renews or finishes meanwhile wins.
        same = Generation.objects.filter(pk=pk, status=Status.PROCESSING, stage=stage, attempts=attempts).filter(
            Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
        )
        if stage == Stage.QUEUED:
            if attempts >= max_attempts:
                failed += generation_fail(
                    generation_id=pk,
                    reason=WORKER_DIED,
                    only_if=Q(attempts=attempts, stage=stage),
                )
                continue
            if same.update(lease_expires_at=next_deadline, updated_at=now):
                enqueue_on_commit(RUN_TASK)
                reenqueued += 1
            continue
        if attempts < max_attempts:
            if same.update(
                stage=Stage.QUEUED,
                progress=0,
                lease_expires_at=next_deadline,
                updated_at=now,
            ):
                enqueue_on_commit(RUN_TASK)
                requeued += 1
                logger.warning(
                    "generation %s: lease expired in %s (attempt %s); re-queued",
                    pk,
                    stage,
                    attempts,
                )
            continue
        if generation_fail(
            generation_id=pk,
            reason=WORKER_DIED,
            only_if=Q(attempts=attempts, stage=stage, lease_expires_at__lt=now),
        ):
            failed += 1
            logger.warning(
                "generation %s: lease expired in %s after %s attempts; failed",
                pk,
                stage,
                attempts,
            )
    return ReapReport(requeued=requeued, failed=failed, reenqueued=reenqueued)
