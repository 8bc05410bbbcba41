"""Small template helpers for the dashboard."""

from __future__ import annotations

from django import template

from generator import selectors

register = template.Library()


@register.simple_tag
def user_teams(user) -> list:
    """Return the user's memberships with their teams (one query) for the team switcher."""
    return list(selectors.membership_list(user=user))


@register.filter
def time_left(seconds: int | None) -> str:
    """Format seconds as '23 h 5 min' / '4 min' / 'under a minute'."""
    if seconds is None:
        return ""
    if seconds < 60:
        return "under a minute"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


@register.filter
def signed(value: int) -> str:
    """Show a credit change with its sign."""
    return f"+{value}" if value > 0 else str(value).replace("-", "−")


KIND_LABELS = {
    "hold": "Video",
    "refund": "Refund",
    "grant": "Grant",
    "allowance": "Allowance",
}


@register.filter
def kind_label(kind: str) -> str:
    """Short name of a ledger entry kind for tables."""
    return KIND_LABELS.get(kind, kind)


@register.filter
def plan_summary(plan: dict | None) -> str:
    """Name the camera moves and effects the engine used, e.g. 'zoom in, light sweep'."""
    if not plan:
        return ""
    names = [
        item.get("type", "")
        for key in ("moves", "effects")
        for item in plan.get(key, [])
        if isinstance(item, dict)
    ]
    return ", ".join(name.replace("_", " ") for name in names if name)
