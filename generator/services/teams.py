"""Teams: invites, roles, member caps, team switching and member removal."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from generator.errors import Conflict, Forbidden, NotFound, ValidationFailed
from generator.models import ApiKey, Invite, Membership, Team
from generator.services.apikeys import apikey_revoke

INVITE_TTL_S = 7 * 86_400
Role = Membership.Role


def _digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _require_manager(actor: Membership) -> None:
    if not actor.can_manage:
        raise Forbidden("only owners and admins can manage the team")


def may_invite(role: str | None, invite_role: str) -> bool:
    """Whether a member with `role` (None: not in the team) may invite, or revoke an invite, as `invite_role`."""
    return role in {Role.OWNER, Role.ADMIN} and (invite_role != Role.OWNER or role == Role.OWNER)


def _inviter_role(invite: Invite) -> str | None:
    """The inviter's role in the invite's team now, or None if they left it or their account is inactive."""
    if invite.created_by_id is None:
        return None
    return (
        Membership.objects.filter(team_id=invite.team_id, user_id=invite.created_by_id, user__is_active=True)
        .values_list("role", flat=True)
        .first()
    )


def _pending_invites(**filters):
    return Invite.objects.filter(used_at__isnull=True, revoked_at__isnull=True, **filters)


def member_invites_revoke(*, team_id: int, user_id: int, role: str | None) -> int:
    """Revoke the member's pending invites that `role` (None: removed) may no longer send; return how many.

    Called wherever a role changes or a member goes (docs/security.md): an invite never grants more
    than its sender may grant now.
    """
    pending = _pending_invites(team_id=team_id, created_by_id=user_id)
    if role == Role.OWNER:
        return 0
    if role == Role.ADMIN:
        pending = pending.filter(role=Role.OWNER)
    return pending.update(revoked_at=timezone.now())


def invite_revoke(*, team: Team, actor: Membership, invite: Invite) -> None:
    """Revoke a pending invite from the Team page (owners' invites as owners only); idempotent."""
    _require_manager(actor)
    if invite.team_id != team.pk:
        raise NotFound("no such invite")
    if not may_invite(actor.role, invite.role):
        raise Forbidden("only owners can revoke an invite to be an owner")
    _pending_invites(pk=invite.pk).update(revoked_at=timezone.now())


def invite_create(*, team: Team, actor: Membership, email: str, role: str = Role.MEMBER) -> tuple[Invite, str]:
    """Create a single-use invite valid 7 days and return it with its raw token (shown once)."""
    _require_manager(actor)
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        raise ValidationFailed(
            "enter a valid email address",
            details={"email": ["Enter a valid email address."]},
        )
    if role not in Role.values:
        raise ValidationFailed("unknown role", details={"role": [f"choose from {', '.join(Role.values)}"]})
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise Forbidden("only owners can invite owners")
    if Membership.objects.filter(team=team, user__email__iexact=email).exists():
        raise ValidationFailed(
            "already a member",
            details={"email": [f"{email} is already a member of {team.name}."]},
        )
    raw = secrets.token_urlsafe(32)
    invite = Invite.objects.create(
        team=team,
        email=email,
        role=role,
        token_digest=_digest(raw),
        expires_at=timezone.now() + timedelta(seconds=INVITE_TTL_S),
        created_by=actor.user,
    )
    return invite, raw


def invite_get_valid(*, token: str) -> Invite | None:
    """Return the unused, unexpired invite for a raw token, or None."""
    if not token or len(token) > 200:
        return None
    invite = Invite.objects.select_related("team").filter(token_digest=_digest(token)).first()
    if invite is None or invite.used_at is not None or invite.revoked_at is not None:
        return None
    if invite.expires_at <= timezone.now() or not may_invite(_inviter_role(invite), invite.role):
        return None
    return invite


@transaction.atomic
def invite_accept(*, invite: Invite, password: str | None, name: str = "", user=None):
    """Use the invite once: create the account (or take the signed-in user) and add the membership."""
    claimed = _pending_invites(pk=invite.pk, expires_at__gt=timezone.now()).update(used_at=timezone.now())
    if claimed != 1:
        raise Conflict("this invite was already used, revoked or has expired")
    # Checked again at the moment of use: the sender may have been demoted, removed or deactivated.
    if not may_invite(_inviter_role(invite), invite.role):
        raise Conflict("this invite is no longer valid: the person who sent it can no longer invite you as that role")
    User = get_user_model()
    if user is None:
        if User.objects.filter(email__iexact=invite.email).exists():
            raise Conflict("an account with this email exists: log in first, then open the invite link again")
        candidate = User(email=invite.email, name=name.strip()[:150])
        try:
            validate_password(password or "", user=candidate)
        except DjangoValidationError as exc:
            raise ValidationFailed("choose another password", details={"password": list(exc.messages)}) from None
        user = User.objects.create_user(email=invite.email, password=password, name=name.strip()[:150])
    elif user.email.lower() != invite.email.lower():
        raise Forbidden(f"this invite is for {invite.email}; you are signed in as {user.email}")
    membership, _ = Membership.objects.get_or_create(team=invite.team, user=user, defaults={"role": invite.role})
    return membership


def member_update(
    *,
    team: Team,
    actor: Membership,
    membership: Membership,
    role: str | None = None,
    monthly_cap: int | None | str = "",
) -> Membership:
    """Change a member's role and/or monthly cap (cap "" = unchanged, None = no cap)."""
    _require_manager(actor)
    if membership.team_id != team.pk:
        raise NotFound("no such member")
    if membership.role == Role.OWNER and actor.role != Role.OWNER:
        raise Forbidden("only owners can change an owner")
    if role is not None and role != membership.role:
        if role not in Role.values:
            raise ValidationFailed(
                "unknown role",
                details={"role": [f"choose from {', '.join(Role.values)}"]},
            )
        if role == Role.OWNER and actor.role != Role.OWNER:
            raise Forbidden("only owners can make owners")
        if membership.role == Role.OWNER and _owner_count(team) <= 1:
            raise Conflict("a team needs at least one owner")
        membership.role = role
        member_invites_revoke(team_id=team.pk, user_id=membership.user_id, role=role)
    if monthly_cap != "" and monthly_cap != membership.monthly_cap:
        if monthly_cap is not None and (not isinstance(monthly_cap, int) or monthly_cap < 0):
            raise ValidationFailed(
                "invalid cap",
                details={"monthly_cap": ["Enter a whole number of credits, 0 or more."]},
            )
        cap_change_check(actor_user_id=actor.user_id, actor_role=actor.role, membership=membership)
        membership.monthly_cap = monthly_cap
    membership.save(update_fields=["role", "monthly_cap", "updated_at"])
    return membership


def _cap_refusal(*, actor_user_id: int, actor_role: str | None, user_id: int, roles: set[str]) -> str | None:
    """Why this actor may not change the cap of `user_id` holding `roles` (docs/security.md), or None.

    Nobody changes their own cap; only owners change an admin's or an owner's. `actor_role` None is
    staff in the Django admin, who may change anyone's cap but their own.
    """
    if user_id == actor_user_id:
        return "nobody changes their own monthly cap"
    if actor_role is not None and actor_role != Role.OWNER and roles != {Role.MEMBER}:
        return "only owners change the monthly cap of an admin or an owner"
    return None


def cap_change_check(*, actor_user_id: int, actor_role: str | None, membership: Membership) -> None:
    """Raise Forbidden unless this actor may change this member's monthly cap.

    Both the stored role and the one being saved count, so demoting an admin and lifting their cap in
    one form is still an owner's decision.
    """
    stored_role = Membership.objects.filter(pk=membership.pk).values_list("role", flat=True).first()
    refusal = _cap_refusal(
        actor_user_id=actor_user_id,
        actor_role=actor_role,
        user_id=membership.user_id,
        roles={stored_role or membership.role, membership.role},
    )
    if refusal:
        raise Forbidden(refusal)


def cap_change_allowed(*, actor: Membership, membership: Membership) -> bool:
    """Whether the Team page offers this actor the member's cap field."""
    return actor.can_manage and not _cap_refusal(
        actor_user_id=actor.user_id, actor_role=actor.role, user_id=membership.user_id, roles={membership.role}
    )


def _owner_count(team: Team) -> int:
    return Membership.objects.filter(team=team, role=Role.OWNER).count()


@transaction.atomic
def member_remove(*, team: Team, actor: Membership, membership: Membership) -> int:
    """Remove a member from the team and revoke every API key they created in it; return keys revoked."""
    if membership.team_id != team.pk:
        raise NotFound("no such member")
    leaving_self = membership.pk == actor.pk
    if not leaving_self:
        _require_manager(actor)
        if membership.role == Role.OWNER and actor.role != Role.OWNER:
            raise Forbidden("only owners can remove an owner")
    if membership.role == Role.OWNER and _owner_count(team) <= 1:
        raise Conflict("a team needs at least one owner")
    revoked = member_keys_revoke(membership=membership)
    member_invites_revoke(team_id=membership.team_id, user_id=membership.user_id, role=None)
    membership.delete()
    return revoked


def member_keys_revoke(*, membership: Membership) -> int:
    """Revoke every live API key the member created in their team; return how many."""
    keys = list(
        ApiKey.objects.filter(
            team_id=membership.team_id,
            created_by=membership.user_id,
            revoked_at__isnull=True,
        ).select_related("team")
    )
    for key in keys:
        apikey_revoke(team=key.team, key=key)
    return len(keys)


@transaction.atomic
def member_delete_as_staff(*, membership: Membership) -> int:
    """Delete a membership from the admin (no role checks) and revoke the member's keys and invites in that team."""
    revoked = member_keys_revoke(membership=membership)
    member_invites_revoke(team_id=membership.team_id, user_id=membership.user_id, role=None)
    membership.delete()
    return revoked


def member_change_as_staff(*, membership: Membership) -> None:
    """Before the admin saves an edited membership: a move to another user or team revokes the previous
    member's keys and invites there; a role change revokes the invites the new role may not send."""
    before = Membership.objects.filter(pk=membership.pk).first() if membership.pk is not None else None
    if before is None:
        return
    if before.user_id != membership.user_id or before.team_id != membership.team_id:
        member_keys_revoke(membership=before)
        member_invites_revoke(team_id=before.team_id, user_id=before.user_id, role=None)
    elif before.role != membership.role:
        member_invites_revoke(team_id=before.team_id, user_id=before.user_id, role=membership.role)


def team_switch(*, user, team_id: int) -> Membership:
    """Return the user's membership in team_id, or raise NotFound if they are not a member."""
    membership = Membership.objects.select_related("team").filter(user=user, team_id=team_id).first()
    if membership is None:
        raise NotFound("you are not a member of that team")
    return membership
