"""The Credits page: balance, this month's usage by member, a daily chart and the ledger."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from generator import selectors
from generator.middleware import TeamRequest
from generator.services.billing import month_start
from generator.views.common import page, team_required

LEDGER_PAGE_SIZE = 50


@team_required
@require_GET
def credits(request: TeamRequest) -> HttpResponse:
    """Show the balance, this month's usage by member and by engine, a 30-day chart and the ledger."""
    since = month_start(timezone.now())
    usage = selectors.usage_by_member(team=request.team, since=since)
    ledger = Paginator(selectors.ledger_list(team=request.team), LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "usage": usage,
        "usage_total": sum(row["credits"] for row in usage),
        "by_engine": selectors.usage_by_engine(team=request.team, since=since),
        "month": since,
        "chart": selectors.usage_chart(team=request.team, days=30),
        "page": ledger,
        "active": "credits",
    }
    return page(request, "generator/credits.html", context, partial="ledger")
