"""The Team page: members, roles and caps, invites, the webhook; switching teams."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from generator import selectors
from generator.errors import Conflict, Forbidden, NotFound, ValidationFailed
from generator.forms import InviteForm, MemberForm, WebhookForm
from generator.middleware import SESSION_TEAM_KEY, TeamRequest
from generator.models import Membership
from generator.services import teams
from generator.services.billing import month_start
from generator.services.webhooks import webhook_configure
from generator.views.common import back, found, require_manager, secret_page, team_required
from generator.views.drafts import draft_discard, draft_load, draft_save, form_errors, once_pop, once_put
from generator.wording import plain, sentence

INVITE_DRAFT, WEBHOOK_DRAFT = "invite", "webhook"
NEW_INVITE, NEW_WEBHOOK_SECRET = "invite", "webhook-secret"


def _team_context(request: TeamRequest) -> dict:
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
            "cap_editable": teams.cap_change_allowed(actor=request.membership, membership=m),
        }
        for m in selectors.member_list(team=request.team)
    ]
    return {
        "deliveries": selectors.webhook_delivery_list(team=request.team) if request.membership.can_manage else [],
        "members": members,
        "invites": [
            {"i": invite, "revocable": teams.may_invite(request.membership.role, invite.role)}
            for invite in (selectors.invite_list_pending(team=request.team) if request.membership.can_manage else ())
        ],
        "invite_form": draft_load(request, INVITE_DRAFT, InviteForm).form,
        "webhook_form": draft_load(
            request, WEBHOOK_DRAFT, WebhookForm, initial={"webhook_url": request.team.webhook_url}
        ).form,
        "active": "team",
    }


@team_required
@require_GET
def team(request: TeamRequest) -> HttpResponse:
    """Members, roles and caps, invites and the webhook; a new invite link or signing secret is shown once."""
    context = _team_context(request)
    invite = once_pop(request, NEW_INVITE)
    if invite:
        context.update(invite_link=invite["link"], new_invite=selectors.invite_get(team=request.team, pk=invite["id"]))
    secret = once_pop(request, NEW_WEBHOOK_SECRET)
    if secret:
        context.update(webhook_secret=secret["secret"])
    return secret_page(request, "generator/team.html", context, shows_secret=bool(invite or secret))


@team_required(back_to="generator:team", draft=INVITE_DRAFT)
@require_POST
def team_invite(request: TeamRequest) -> HttpResponse:
    """Create an invite link for an email and a role; the Team page shows it once."""
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
                target = field if field in form.fields else None
                for message in msgs:
                    form.add_error(target, plain(target, message))
        except Forbidden as exc:
            form.add_error("role", sentence(exc.message))
        else:
            draft_discard(request, INVITE_DRAFT)
            link = request.build_absolute_uri(reverse("generator:invite-accept", args=[raw]))
            once_put(request, NEW_INVITE, {"id": invite.pk, "link": link})
            return redirect(reverse("generator:team") + "#invite-created")
    draft_save(request, INVITE_DRAFT, request.POST, errors=form_errors(form))
    return redirect("generator:team")  # no #fragment: app.js moves the focus to the field in error


@team_required(back_to="generator:team")
@require_POST
def invite_revoke(request: TeamRequest, pk: int) -> HttpResponse:
    """Revoke a pending invite: its link stops working at once."""
    require_manager(request)
    invite = found(selectors.invite_get(team=request.team, pk=pk))
    try:
        teams.invite_revoke(team=request.team, actor=request.membership, invite=invite)
    except Forbidden as exc:
        messages.error(request, f"Not revoked: {exc.message}.")
    else:
        messages.success(request, f"Revoked the invite for {invite.email}; its link no longer works.")
    return redirect(reverse("generator:team") + "#invites")


@team_required(back_to="generator:team", draft=WEBHOOK_DRAFT)
@require_POST
def team_webhook(request: TeamRequest) -> HttpResponse:
    """Set or clear the team's webhook URL; a new signing secret is shown once on the Team page."""
    require_manager(request)
    form = WebhookForm(request.POST)
    had_secret = bool(request.team.webhook_secret_encrypted)
    if form.is_valid():
        try:
            secret = webhook_configure(team=request.team, url=form.cleaned_data["webhook_url"])
        except ValidationFailed as exc:
            for message in [m for msgs in exc.details.values() for m in msgs] or [exc.message]:
                form.add_error("webhook_url", plain("webhook_url", message))
        else:
            draft_discard(request, WEBHOOK_DRAFT)
            if not secret:
                messages.success(request, "Webhook removed.")
            elif had_secret:
                messages.success(request, "Webhook URL saved; the signing secret is unchanged.")
            else:
                once_put(request, NEW_WEBHOOK_SECRET, {"secret": secret})
            return redirect(reverse("generator:team") + "#webhook")
    draft_save(request, WEBHOOK_DRAFT, request.POST, errors=form_errors(form))
    return redirect("generator:team")


def _membership(request: TeamRequest, pk: int) -> Membership:
    return found(selectors.member_get(team=request.team, pk=pk))


@team_required(back_to="generator:team")
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
    # A row whose cap this user may not change shows no cap field: its absence means "unchanged".
    cap_sent = form["monthly_cap"].html_name in request.POST
    try:
        teams.member_update(
            team=request.team,
            actor=request.membership,
            membership=membership,
            role=form.cleaned_data["role"],
            monthly_cap=form.cleaned_data["monthly_cap"] if cap_sent else "",
        )
    except (Conflict, Forbidden, ValidationFailed) as exc:
        messages.error(request, f"Not changed: {exc.message}.")
    else:
        messages.success(request, f"Updated {membership.user.display_name}.")
    return redirect("generator:team")


@team_required(back_to="generator:team")
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


@require_POST
def team_switch(request: TeamRequest) -> HttpResponse:
    """Make another of the user's teams the current one."""
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("generator:home"))
    try:
        membership = teams.team_switch(user=request.user, team_id=int(request.POST.get("team", "")))
    except (NotFound, ValueError):
        raise Http404 from None
    request.session[SESSION_TEAM_KEY] = membership.team_id
    messages.success(request, f"Switched to {membership.team.name}.")
    return back(request, reverse("generator:home"))
