"""The Jobs page: live status rows that poll while active; cancel and retry."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from generator import selectors
from generator.errors import InsufficientCredits, RateLimited, ValidationFailed
from generator.middleware import TeamRequest
from generator.services.generations import generation_cancel, generation_retry
from generator.views.common import back, cancel_and_say, found, generation_or_404, page, team_required
from generator.views.gallery import generation_card
from generator.wording import refusal

JOBS_PAGE_SIZE = 20


@team_required
@require_GET
def jobs(request: TeamRequest) -> HttpResponse:
    """List the team's jobs, newest first; active rows poll themselves."""
    qs = selectors.generation_jobs(team=request.team)
    results = Paginator(qs, JOBS_PAGE_SIZE).get_page(request.GET.get("page"))
    results.object_list = list(results.object_list)
    selectors.queue_positions(results.object_list, team=request.team)
    return page(
        request,
        "generator/jobs.html",
        {"page": results, "active": "jobs"},
        partial="job-list",
    )


@team_required
@require_GET
def job_detail(request: TeamRequest, pk: uuid.UUID) -> HttpResponse:
    """Show one job; for htmx, its row, answering 286 once the job has ended so polling stops."""
    generation = found(selectors.generation_job_get(team=request.team, uuid=pk))
    context = {"job": generation, "active": "jobs"}
    if request.htmx:
        response = render(request, "generator/jobs.html#job-row", context)
        if not generation.is_active:
            # The job ended: stop polling and refresh the header balance (a failed job is refunded).
            balance = render_to_string(
                "base.html#balance",
                {"team": request.team, "oob": True},
                request=request,
            )
            return HttpResponseStopPolling(response.content + balance.encode())
        return response
    context["card"] = generation_card(generation, timezone.now())
    return render(request, "generator/job.html", context)


@team_required(back_to="generator:jobs")
@require_POST
def job_cancel(request: TeamRequest, pk: uuid.UUID) -> HttpResponse:
    generation = generation_or_404(request, pk)
    done = "Cancelled; the credits were given back."
    return cancel_and_say(
        request, generation_cancel, generation=generation, done=done, default=reverse("generator:jobs")
    )


@team_required(back_to="generator:jobs")
@require_POST
def job_retry(request: TeamRequest, pk: uuid.UUID) -> HttpResponse:
    generation = generation_or_404(request, pk)
    try:
        result = generation_retry(team=request.team, user=request.user, generation=generation)
    except (RateLimited, InsufficientCredits) as exc:
        messages.error(request, refusal(exc))
    except ValidationFailed as exc:
        details = "; ".join(m for msgs in exc.details.values() for m in msgs) or exc.message
        messages.error(request, f"Could not retry: {details}")
    else:
        messages.success(request, f"Retried as a new job ({result.generation.cost} credits).")
    return back(request, reverse("generator:jobs"))
