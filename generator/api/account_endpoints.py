"""GET /v1/account: the team's balance, rate limits and this month's usage."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from generator.api.registry import ApiRequest
from generator.models import CreditLedger
from generator.presenters import timestamp
from generator.services.billing import month_start


def account(request: ApiRequest) -> HttpResponse:
    """Return the team's balance, limits and this month's usage (TIME_ZONE months)."""
    team = request.team
    team.refresh_from_db(fields=["balance", "rate_per_second", "rate_per_minute"])
    start = month_start(timezone.now())
    # A refunded hold (ERROR, CANCELLED) is no billed video, just as it costs no credits.
    refunded = CreditLedger.objects.filter(generation=OuterRef("generation"), kind=CreditLedger.Kind.REFUND)
    usage = CreditLedger.objects.filter(
        team=team, kind__in=[CreditLedger.Kind.HOLD, CreditLedger.Kind.REFUND], created_at__gte=start
    ).aggregate(
        spent=Sum("amount"),
        holds=Count("pk", filter=Q(kind=CreditLedger.Kind.HOLD) & ~Exists(refunded)),
    )
    return JsonResponse(
        {
            "data": {
                "team": team.name,
                "balance": team.balance,
                "rate_limits": {"per_second": team.per_second_limit, "per_minute": team.per_minute_limit},
                "usage_this_month": {
                    "credits": -(usage["spent"] or 0),
                    "generations": usage["holds"] or 0,
                    "since": timestamp(start),
                },
            }
        }
    )
