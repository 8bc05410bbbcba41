"""GET /v1/account: the team's balance, rate limits and this month's usage."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from generator.api.registry import ApiRequest
from generator.presenters import timestamp
from generator.selectors import usage_total
from generator.services.billing import month_start


def account(request: ApiRequest) -> HttpResponse:
    """Return the team's balance, limits and this month's usage (TIME_ZONE months)."""
    team = request.team  # read with the key on this request
    start = month_start(timezone.now())
    usage = usage_total(team=team, since=start)
    return JsonResponse(
        {
            "data": {
                "team": team.name,
                "balance": team.balance,
                "rate_limits": {"per_second": team.per_second_limit, "per_minute": team.per_minute_limit},
                "usage_this_month": {
                    "credits": usage["credits"],
                    "generations": usage["videos"],
                    "since": timestamp(start),
                },
            }
        }
    )
