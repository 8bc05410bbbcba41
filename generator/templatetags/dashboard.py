"""Small template helpers for the dashboard."""

from __future__ import annotations

import re

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from generator import naming, selectors
from generator.errors import ValidationFailed
from generator.models import EngineConnection
from generator.services.billing import price_for
from generator.services.engine_connections import engine_price
from generator.upstream.registry import BUILTIN

register = template.Library()


@register.simple_tag
def user_teams(user) -> list:
    """Return the user's memberships with their teams (one query) for the team switcher."""
    return list(selectors.membership_list(user=user))


@register.filter
def engine_label(type: str) -> str:
    """Name an engine type for people: "Claid.ai", "fal.ai", "Replicate", or the built-in engine."""
    if type == BUILTIN:
        return "Built-in motion engine"
    return str(dict(EngineConnection.Type.choices).get(type, type))


@register.filter
def shape_list(values) -> str:
    """Name an engine's shapes for people: "source" is the photo's own shape."""
    return ", ".join("the photo's own" if value == "source" else str(value) for value in values or ())


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
        item.get("type", "") for key in ("moves", "effects") for item in plan.get(key, []) if isinstance(item, dict)
    ]
    return ", ".join(name.replace("_", " ") for name in names if name)


@register.filter
def ago(moment) -> str:
    """Say how long ago a moment was: 'just now', '5 min ago', '3 h ago', then the date."""
    if not moment:
        return ""
    seconds = int((timezone.now() - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86_400:
        return f"{seconds // 3600} h ago"
    local = timezone.localtime(moment)
    return f"{local.day} {local:%b, %H:%M}"


@register.filter
def took(job) -> str:
    """Say how long a finished job took from submission, in seconds or minutes."""
    if not job.completed_at:
        return ""
    seconds = max(0, int((job.completed_at - job.created_at).total_seconds()))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


@register.filter
def upstream_progress(job) -> list[str]:
    """Say what the upstream last reported of a job it is making (services/upstream_jobs.py stores it), in phrases."""
    state = job.upstream_state or {}
    detail = state.get("detail") or {}
    said = [str(detail["state"]).replace("_", " ").lower()] if detail.get("state") else []
    if isinstance(detail.get("queue_position"), int):
        said.append(f"queue position {detail['queue_position']}")  # the upstream's own count
    if detail.get("started"):
        said.append("started")
    if isinstance(detail.get("percent"), int | float):
        said.append(f"{round(detail['percent'])}%")
    submitted = parse_datetime(state["submitted_at"]) if state.get("submitted_at") else None
    if submitted is not None:
        seconds = max(0, int((timezone.now() - submitted).total_seconds()))
        minutes, seconds = divmod(seconds, 60)
        said.append(f"{minutes} min {seconds} s since it was sent" if minutes else f"{seconds} s since it was sent")
    return said


@register.filter
def photo_name(job) -> str:
    """Name the photo a job animates (docs/dashboard.md: videos are known by their photo)."""
    return naming.photo_name(job)


@register.filter
def price_now(job) -> int:
    """What making this job again costs today: its duration's price on the engine the retry runs on.

    That is the engine its request names, else the team's default now (services/generations.py
    generation_retry sends the same request); a named engine since disconnected: builtin's price.
    """
    name = ((job.request or {}).get("options") or {}).get("engine")
    try:
        return engine_price(team=job.team, name=name, duration=job.duration)
    except ValidationFailed:
        return price_for(job.duration)


_CODE_MARK = re.compile(r"`([^`]+)`")


@register.filter(needs_autoescape=True)
def codemarks(text: str, autoescape: bool = True) -> str:
    """Render `code` marks of a plain-text description as <code> (everything else escaped)."""
    escaped = conditional_escape(text) if autoescape else str(text)
    return mark_safe(_CODE_MARK.sub(r"<code>\1</code>", str(escaped)))


_BREAK_AFTER = re.compile(r"([/_.\-])")


@register.filter(needs_autoescape=True)
def wbr(text: str, autoescape: bool = True) -> str:
    """Let a long name or path wrap after / _ . - (never mid-word) on a narrow screen."""
    escaped = str(conditional_escape(text) if autoescape else text)
    return mark_safe(_BREAK_AFTER.sub(r"\1<wbr>", escaped))


@register.simple_tag
def widget(field, help: str = "") -> str:
    """Render a field's widget tied to its help text and errors (aria-describedby), as _field.html lays them out."""
    ids = []
    if help or field.help_text:
        ids.append(f"{field.auto_id}_helptext")
    if field.errors:
        ids.append(f"{field.auto_id}_error")
    return field.as_widget(attrs={"aria-describedby": " ".join(ids)} if ids else None)


@register.filter
def error_count(form) -> int:
    """Count a form's error messages, for the summary's heading."""
    return sum(len(errors) for errors in form.errors.values())
