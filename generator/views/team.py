"""The Team page: members, roles and caps, invites, the webhook; switching teams."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from generator import selectors
from generator.errors import Conflict, NotFound, ValidationFailed
from generator.forms import InviteForm, MemberForm
from generator.middleware import SESSION_TEAM_KEY, TeamRequest
from generator.models import Membership
from generator.services import teams
from generator.services.billing import month_start
from generator.services.webhooks import webhook_configure
from generator.views.common import back, found, require_manager, team_required


def _team_context(request: TeamRequest, **extra) -> dict:
    spent = {
        row["user_id"]: row["credits"]
        for row in selectors.usage_by_member(team=request.team, since=month_start(timezone.now()))
    }
    members = [
        {
            "m": m,
            "spent": spent.get(m.user_id, 0),
            "form": MemberForm(
                initial={"role": m.role, "monthly_cap": m.monthly_cap},
                prefix=f"m{m.pk}",
            ),
        }
        for m in selectors.member_list(team=request.team)
    ]
    return {
        "deliveries": selectors.webhook_delivery_list(team=request.team) if request.membership.can_manage else [],
        "members": members,
        "invites": selectors.invite_list_pending(team=request.team),
        "invite_form": InviteForm(),
        "active": "team",
        **extra,
    }


@team_required
@require_GET
def team(request: TeamRequest) -> HttpResponse:
    return render(request, "generator/team.html", _team_context(request))


@team_required
@require_POST
def team_invite(request: TeamRequest) -> HttpResponse:
    """Create an invite link (shown once) for an email and a role."""
    require_manager(request)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invite, raw = teams.invite_create(
                team=request.team,
                actor=request.membership,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ValidationFailed as exc:
            for field, msgs in exc.details.items():
                for message in msgs:
                    form.add_error(field if field in form.fields else None, message)
        else:
            link = request.build_absolute_uri(reverse("generator:invite-accept", args=[raw]))
            response = render(
                request,
                "generator/team.html",
                _team_context(request, invite_link=link, new_invite=invite),
            )
            response["Cache-Control"] = "no-store"
            return response
    return render(
        request,
        "generator/team.html",
        _team_context(request, invite_form=form),
        status=422,
    )


@team_required
@require_POST
def team_webhook(request: TeamRequest) -> HttpResponse:
    """Set or clear the team's webhook URL; a new signing secret is shown once."""
    require_manager(request)
    had_secret = bool(request.team.webhook_secret_encrypted)
    try:
        secret = webhook_configure(team=request.team, url=request.POST.get("webhook_url", ""))
    except ValidationFailed as exc:
        errors = [m for msgs in exc.details.values() for m in msgs] or [exc.message]
        return render(
            request,
            "generator/team.html",
            _team_context(request, webhook_errors=errors),
            status=422,
        )
    if not secret:
        messages.success(request, "Webhook removed.")
        return redirect("generator:team")
    if had_secret:
        messages.success(request, "Webhook URL saved; the signing secret is unchanged.")
        return redirect("generator:team")
    response = render(request, "generator/team.html", _team_context(request, webhook_secret=secret))
    response["Cache-Control"] = "no-store"
    return response


def _membership(request: TeamRequest, pk: int) -> Membership:
    return found(selectors.member_get(team=request.team, pk=pk))


@team_required
@require_POST
def member_update(request: TeamRequest, pk: int) -> HttpResponse:
    """Change a member's role and monthly cap."""
    require_manager(request)
    membership = _membership(request, pk)
    form = MemberForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(
            request,
            "Enter a role and a whole number of credits (or leave the cap empty).",
        )
        return redirect("generator:team")
    try:
        teams.member_update(
            team=request.team,
            actor=request.membership,
            membership=membership,
            role=form.cleaned_data["role"],
            monthly_cap=form.cleaned_data["monthly_cap"],
        )
    except (Conflict, ValidationFailed) as exc:
        messages.error(request, f"Not changed: {exc.message}.")
    else:
        messages.success(request, f"Updated {membership.user.display_name}.")
    return redirect("generator:team")


@team_required
@require_POST
def member_remove(request: TeamRequest, pk: int) -> HttpResponse:
    """Remove a member; their API keys in this team are revoked."""
    membership = _membership(request, pk)
    try:
        revoked = teams.member_remove(team=request.team, actor=request.membership, membership=membership)
    except Conflict as exc:
        messages.error(request, f"Not removed: {exc.message}.")
        return redirect("generator:team")
    messages.success(
        request,
        f"Removed {membership.user.display_name}; {revoked} API key(s) revoked.",
    )
    if membership.user_id == request.user.id:
        request.session.pop(SESSION_TEAM_KEY, None)
        return redirect("generator:home")
    return redirect("generator:team")


@login_required
@require_POST
def team_switch(request: TeamRequest) -> HttpResponse:
    """Make another of the user's teams the current one."""
    try:
        membership = teams.team_switch(user=request.user, team_id=int(request.POST.get("team", "")))
    except (NotFound, ValueError):
        raise Http404 from None
    request.session[SESSION_TEAM_KEY] = membership.team_id
    messages.success(request, f"Switched to {membership.team.name}.")
    return back(request, reverse("generator:home"))
