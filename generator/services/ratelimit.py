"""Exact sliding rate windows (1 s and 60 s) counted on accepted generations.

Callers that admit a job evaluate the windows under the team row lock taken by generation_create,
so concurrent submits of one team serialize and the count cannot be overtaken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from generator.errors import RateLimitStatus
from generator.models import Generation, Team

SECOND_WINDOW_S = 1
MINUTE_WINDOW_S = 60


@dataclass(frozen=True)
class _Window:
    size_s: int
    limit: int
    remaining: int
    reset_s: int


def _window(*, team: Team, size_s: int, limit: int, now: datetime) -> _Window:
    # Only the newest `limit` rows matter: when there are that many, the oldest of them is the
    # one whose expiry lets the window admit one more.
    newest = list(
        Generation.objects.filter(
            team=team,
            created_at__gt=now - timedelta(seconds=size_s),
            created_at__lte=now,
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    remaining = max(0, limit - len(newest))
    reset_s = 0
    if remaining == 0:
        frees_at = newest[-1] + timedelta(seconds=size_s)
        reset_s = max(1, math.ceil((frees_at - now).total_seconds()))
    return _Window(size_s=size_s, limit=limit, remaining=remaining, reset_s=reset_s)


def ratelimit_status(*, team: Team, now: datetime | None = None) -> RateLimitStatus:
    """Return both windows' state for the team at `now` (default: the current time)."""
    now = now or timezone.now()
    per_second, per_minute = team.per_second_limit, team.per_minute_limit
    windows = [
        _window(team=team, size_s=MINUTE_WINDOW_S, limit=per_minute, now=now),
        _window(team=team, size_s=SECOND_WINDOW_S, limit=per_second, now=now),
    ]
    # Nearest exhaustion = fewest remaining; on a tie the window that frees up last binds.
    binding = min(windows, key=lambda w: (w.remaining, -w.reset_s))
    return RateLimitStatus(
        per_second=per_second,
        per_minute=per_minute,
        limit=binding.limit,
        remaining=binding.remaining,
        reset_s=binding.reset_s,
    )


def ratelimit_admits(status: RateLimitStatus) -> bool:
    """Return True when both windows have room for one more accepted job."""
    return status.remaining > 0
