"""Delete temporary videos whose 24-hour link has expired; the row and the poster stay."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from generator.models import Generation

logger = logging.getLogger(__name__)
BATCH = 500


def generations_purge_expired(*, now: datetime | None = None) -> int:
    """Delete expired temporary video files, mark their rows purged, and return how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.GENERATOR_LINK_TTL_S)
    purged = 0
    while True:
        batch = list(
            Generation.objects.filter(
                status=Generation.Status.DONE,
                is_temporary=True,
                purged_at__isnull=True,
                completed_at__lte=cutoff,
            )
            .order_by("completed_at")
            .values_list("pk", "video_name")[:BATCH]
        )
        if not batch:
            return purged
        for pk, name in batch:
            if name:
                try:
                    default_storage.delete(name)
                except OSError:
                    logger.warning(
                        "could not delete expired video %s; will retry",
                        name,
                        exc_info=True,
                    )
                    continue
            # Marked even if the file was already gone: the link answers 410 either way.
            purged += Generation.objects.filter(pk=pk, purged_at__isnull=True).update(purged_at=now, updated_at=now)
        if len(batch) < BATCH:
            return purged
