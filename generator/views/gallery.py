"""The Gallery: the team's videos as a filtered, paginated grid of posters."""

from __future__ import annotations

import uuid
from datetime import date
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from generator import selectors
from generator.errors import Conflict
from generator.middleware import TeamRequest
from generator.models import Generation
from generator.naming import photo_name, video_filename
from generator.services import links
from generator.services.generation_files import poster_open
from generator.services.generations import generation_delete
from generator.views.common import back, found, generation_or_404, page, team_required

GALLERY_PAGE_SIZE = 24


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _parse_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _dates_problem(date_from: date | None, date_to: date | None) -> str:
    """Say so when the From date comes after the To date: no video can match such a range."""
    if date_from is None or date_to is None or date_from <= date_to:
        return ""
    return (
        f"The From date ({date_from:%-d %b %Y}) is after the To date ({date_to:%-d %b %Y}), "
        "so no video can match. Swap them, or change one."
    )


def generation_card(generation: Generation, now) -> dict:
    """What one gallery card shows: links and time left are computed, not stored."""
    video_url = expires_at = None
    done = generation.status == Generation.Status.DONE
    expired = done and (generation.purged_at is not None or links.link_is_expired(generation))
    # A storage output whose storage was disconnected has no file to link to any more.
    disconnected = done and not expired and not links.link_is_available(generation)
    if done and not expired and not disconnected:
        video_url = links.link_url(generation, file="video")
        expires_at = links.link_expires_at(generation)
    return {
        "job": generation,
        "video_url": video_url,
        "expired": expired,
        "disconnected": disconnected,
        "expires_at": expires_at,
        "seconds_left": int((expires_at - now).total_seconds()) if expires_at else None,
        "prompt": _prompt_text(generation),
        "photo_name": photo_name(generation),
        "filename": video_filename(generation),
    }


def _prompt_text(generation: Generation) -> str:
    prompt = (generation.request or {}).get("options", {}).get("prompt")
    if isinstance(prompt, dict):
        return generation.generated_prompt or "Auto" + (
            f" — {prompt['guidelines']}" if prompt.get("guidelines") else ""
        )
    return prompt or ""


@team_required
@require_GET
def gallery(request: TeamRequest) -> HttpResponse:
    """Show the team's videos as a paginated grid with filters."""
    status = request.GET.get("status") or None
    if status not in Generation.Status.values:
        status = None
    try:
        member_id = int(request.GET["member"]) if request.GET.get("member") else None
    except ValueError:
        member_id = None
    try:
        batch_id = int(request.GET["batch"]) if request.GET.get("batch") else None
    except ValueError:
        batch_id = None
    date_from, date_to = (
        _parse_date(request.GET.get("from")),
        _parse_date(request.GET.get("to")),
    )
    shape = request.GET.get("shape") or None
    if shape not in Generation.AspectRatio.values:
        shape = None
    engines = selectors.engine_names(team=request.team)
    engine = request.GET.get("engine") or None
    if engine not in engines:
        engine = None
    video = _parse_uuid(request.GET.get("video"))
    qs = selectors.generation_gallery(
        team=request.team,
        status=status,
        member_id=member_id,
        date_from=date_from,
        date_to=date_to,
        batch_id=batch_id,
        aspect_ratio=shape,
        engine=engine,
        video=video,
    )
    results = Paginator(qs, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    filters = {
        k: v
        for k, v in {
            "status": status,
            "member": member_id,
            "from": date_from,
            "to": date_to,
            "batch": batch_id,
            "shape": shape,
            "engine": engine,
            "video": video,
        }.items()
        if v
    }
    context = {
        "page": results,
        "cards": [generation_card(g, now) for g in results.object_list],
        "members": selectors.member_list(team=request.team),
        "batches": selectors.batch_choices(team=request.team),
        "statuses": Generation.Status.choices,
        "shapes": Generation.AspectRatio.choices,
        "engines": engines,
        "filters": filters,
        "dates_problem": _dates_problem(date_from, date_to),
        "swapped_query": urlencode({**filters, "from": date_to, "to": date_from}),
        "one_video": video is not None,
        "filter_query": urlencode(filters),
        "active": "gallery",
    }
    return page(request, "generator/gallery.html", context, partial="gallery-results")


@team_required
@require_GET
@cache_control(private=True, max_age=3600)
def poster(request: TeamRequest, pk: uuid.UUID) -> FileResponse:
    """Serve a video's poster (kept even after the video expires) to members of its team."""
    return FileResponse(found(poster_open(generation_or_404(request, pk))), content_type="image/jpeg")


@team_required(back_to="generator:gallery")
@require_POST
def video_delete(request: TeamRequest, pk: uuid.UUID) -> HttpResponse:
    generation = generation_or_404(request, pk)
    try:
        generation_delete(team=request.team, user=request.user, generation=generation)
    except Conflict as exc:
        messages.error(request, f"Not deleted: {exc.message}.")
    else:
        messages.success(request, "Video deleted; its link no longer works.")
    return back(request, reverse("generator:gallery"))
