"""The Credits page: balance, this month's usage by member, a daily chart and the ledger."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from generator import selectors
from generator.services.billing import month_start
from generator.views.common import page, team_required

LEDGER_PAGE_SIZE = 50


def _chart(days: list[tuple]) -> dict:
    """Lay out a bar chart of daily credits as SVG coordinates (drawn by the template)."""
    width, height, pad, right = 720, 180, 24, 24
    top = max((credits for _, credits in days), default=0) or 1
    slot = (width - pad - right) / max(len(days), 1)
    bars = []
    for i, (day, credits) in enumerate(days):
        h = round((height - pad) * credits / top, 1)
        bars.append(
            {
                "x": round(pad + i * slot + 2, 1),
                "y": round(height - pad - h, 1),
                "w": round(slot - 4, 1),
                "h": h,
                "day": day,
                "credits": credits,
                "label": i % 5 == 0 or i == len(days) - 1,
            }
        )
    return {
        "width": width,
        "height": height,
        "pad": pad,
        "top": top,
        "bars": bars,
        "base": height - pad,
        "total": sum(c for _, c in days),
    }


@team_required
@require_GET
def credits(request: HttpRequest) -> HttpResponse:
    """Show the balance, this month's usage by member, a 30-day chart and the ledger."""
    since = month_start(timezone.now())
    usage = selectors.usage_by_member(team=request.team, since=since)
    ledger = Paginator(selectors.ledger_list(team=request.team), LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "usage": usage,
        "usage_total": sum(row["credits"] for row in usage),
        "month": since,
        "chart": _chart(selectors.usage_daily(team=request.team, days=30)),
        "page": ledger,
        "active": "credits",
    }
    return page(request, "generator/credits.html", context, partial="ledger")
