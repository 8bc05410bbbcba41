"""What every dashboard view shares: the team check, page/fragment rendering, safe redirects."""

from __future__ import annotations

import functools
from typing import TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from generator import selectors
from generator.errors import Forbidden, GeneratorError, NotFound, RateLimited
from generator.middleware import TeamRequest
from generator.models import Generation, Storage

T = TypeVar("T")


def team_required(view):
    """Require login and a team; show a friendly page to a user who is in no team."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: TeamRequest, *args, **kwargs):
        if not request.membership:
            return render(request, "generator/no_team.html", status=403)
        try:
            return view(request, *args, **kwargs)
        except NotFound:
            raise Http404 from None
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from None

    return wrapper


def require_manager(request: TeamRequest) -> None:
    if not request.membership.can_manage:
        raise PermissionDenied("only owners and admins can do this")


def page(
    request: TeamRequest,
    template: str,
    context: dict,
    *,
    partial: str | None = None,
    status: int = 200,
):
    """Render the whole page, or only `partial` for an htmx request."""
    name = f"{template}#{partial}" if partial and request.htmx else template
    return render(request, name, context, status=status)


def back(request: TeamRequest, default: str) -> HttpResponse:
    """Redirect to a safe `next` (or the default); htmx requests get a client-side redirect."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = default
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


def found(obj: T | None) -> T:
    """Return what a team-scoped lookup found, or answer 404 (another team's object is never found)."""
    if obj is None:
        raise Http404
    return obj


def generation_or_404(request: TeamRequest, pk) -> Generation:
    return found(selectors.generation_get(team=request.team, uuid=pk))


def storage_or_404(request: TeamRequest, pk: int) -> Storage:
    return found(selectors.storage_get(team=request.team, pk=pk))


def refusal(exc: GeneratorError) -> str:
    """Explain a refused submission and say when to try again."""
    if isinstance(exc, RateLimited):
        rate = exc.rate
        return (
            f"Too many videos started at once: this team may start {rate.per_second} per second and "
            f"{rate.per_minute} per minute. Nothing was charged. Try again in {max(1, rate.reset_s)} s."
        )
    message = exc.message[:1].upper() + exc.message[1:]
    if "cap" in exc.message:
        return f"{message}. Nothing was charged. Your cap resets on the 1st; a team owner or admin can raise it."
    return f"{message}. Nothing was charged. Ask your operator to add credits (or wait for the monthly allowance), then try again."
