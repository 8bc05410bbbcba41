"""API keys: 32 random bytes shown once, stored as their SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from generator.errors import ValidationFailed
from generator.models import ApiKey, Membership, Team

KEY_PREFIX = "iv_"
VALID_SCOPES = tuple(ApiKey.Scope.values)
LAST_USED_RESOLUTION_S = 60


def apikey_digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def apikey_create(
    *, team: Team, created_by=None, name: str = "", scopes: list[str] | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored."""
    scopes = list(VALID_SCOPES) if scopes is None else list(dict.fromkeys(scopes))
    unknown = [scope for scope in scopes if scope not in VALID_SCOPES]
    if unknown or not scopes:
        raise ValidationFailed(
            "invalid scopes",
            details={"scopes": [f"choose from {', '.join(VALID_SCOPES)}; got {', '.join(unknown) or 'none'}"]},
        )
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        team=team,
        created_by=created_by,
        name=name[:100],
        prefix=raw[:10],
        digest=apikey_digest(raw),
        scopes=scopes,
    )
    return key, raw


def apikey_authenticate(raw_key: str) -> ApiKey | None:
    """Return the usable key for a raw secret, or None (one query: the key, its team, its creator's role).

    A key acts with its creator's current standing (docs/security.md): a key whose creator is
    deactivated or no longer in the key's team is refused here like an unknown key (401), and
    `creator_role` carries the creator's role now, for apikey_can_manage. A key made on the command
    line has no creator and belongs to the team.
    """
    if not raw_key or len(raw_key) > 200:
        return None
    creator_role = Membership.objects.filter(team_id=OuterRef("team_id"), user_id=OuterRef("created_by_id"))
    key = (
        ApiKey.objects.select_related("team", "created_by")
        .annotate(current_creator_role=Subquery(creator_role.values("role")[:1]))
        .filter(digest=apikey_digest(raw_key))
        .first()
    )
    if key is None or key.revoked_at is not None:
        return None
    key.creator_role = key.current_creator_role
    if key.created_by is not None and (not key.created_by.is_active or key.creator_role is None):
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def apikey_can_manage(key: ApiKey) -> bool:
    """Whether an authenticated key may do what only owners and admins do (its creator's role now).

    A command-line key (no creator) was made by the operator for the team and keeps those powers.
    """
    return key.created_by_id is None or key.creator_role in {Membership.Role.OWNER, Membership.Role.ADMIN}


def apikey_revoke(*, team: Team, key: ApiKey) -> None:
    """Revoke a key of this team (idempotent)."""
    ApiKey.objects.filter(pk=key.pk, team=team, revoked_at__isnull=True).update(revoked_at=timezone.now())
