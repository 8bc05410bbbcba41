"""What every dashboard view shares: the team check, page/fragment rendering, safe redirects."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from generator import selectors
from generator.errors import Conflict, Forbidden, NotFound
from generator.middleware import TeamRequest
from generator.models import Generation, Storage
from generator.views.drafts import draft_save

SESSION_ENDED = "Your session had ended, so nothing was sent. We kept what you typed: check it and send it again."

T = TypeVar("T")


def team_required(
    view: Callable | None = None,
    *,
    back_to: str | None = None,
    draft: str | None = None,
    secret_fields: tuple[str, ...] = (),
) -> Callable:
    """Require login and a team; show a friendly page to a user who is in no team.

    A POST that arrives after the session ended goes through the login page back to `back_to` (the
    page holding the form, never the POST-only URL), with its values kept as the draft `draft`.
    """

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: TeamRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                return _to_login(request, back_to=back_to, draft=draft, secret_fields=secret_fields)
            if not request.membership:
                return render(request, "generator/no_team.html", status=403)
            try:
                return view(request, *args, **kwargs)
            except NotFound:
                raise Http404 from None
            except Forbidden as exc:
                raise PermissionDenied(exc.message) from None

        return wrapper

    return decorate(view) if view is not None else decorate


def _to_login(
    request: TeamRequest, *, back_to: str | None, draft: str | None, secret_fields: tuple[str, ...]
) -> HttpResponse:
    target = request.get_full_path()
    if request.method == "POST":
        if draft:
            draft_save(request, draft, request.POST, notice=SESSION_ENDED, secret_fields=secret_fields)
        if back_to:
            name, _, query = back_to.partition("?")  # "generator:home?mode=batch"
            target = reverse(name) + (f"?{query}" if query else "")
    elif request.htmx:
        target = request.htmx.current_url_abs_path or target
    response = redirect_to_login(target)
    if request.htmx:
        return HttpResponseClientRedirect(response["Location"])
    return response


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


def secret_page(request: TeamRequest, template: str, context: dict, *, shows_secret: bool) -> HttpResponse:
    """Render a page; never cached (no-store) while it shows a secret (a new key, an invite link, what was typed)."""
    response = render(request, template, context)
    if shows_secret:
        response["Cache-Control"] = "no-store"
    return response


def back(request: TeamRequest, default: str) -> HttpResponse:
    """Redirect to a safe `next` (or the default); htmx requests get a client-side redirect."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = default
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


def cancel_and_say(
    request: TeamRequest, cancel: Callable[..., object], *, done: str, default: str, **target: object
) -> HttpResponse:
    """Cancel `target` with the team's cancel service; say what happened (a Conflict in its own words) and go back."""
    try:
        cancel(team=request.team, **target)
    except Conflict as exc:
        messages.error(request, f"Could not cancel: {exc.message}.")
    else:
        messages.success(request, done)
    return back(request, default)


def attachment(chunks: Iterable[bytes], content_type: str, filename: str) -> StreamingHttpResponse:
    """A streamed download saved under `filename`."""
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def found(obj: T | None) -> T:
    """Return what a team-scoped lookup found, or answer 404 (another team's object is never found)."""
    if obj is None:
        raise Http404
    return obj


def generation_or_404(request: TeamRequest, pk) -> Generation:
    return found(selectors.generation_get(team=request.team, uuid=pk))


def storage_or_404(request: TeamRequest, pk: int) -> Storage:
    return found(selectors.storage_get(team=request.team, pk=pk))
