"""API keys: 32 random bytes shown once, stored as their SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from generator.errors import ValidationFailed
from generator.models import ApiKey, Team

KEY_PREFIX = "iv_"
VALID_SCOPES = (ApiKey.Scope.VIDEO_GENERATION.value, ApiKey.Scope.STORAGE.value)
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
    """Return the active key for a raw secret (one indexed lookup by digest), or None."""
    if not raw_key or len(raw_key) > 200:
        return None
    key = ApiKey.objects.select_related("team", "created_by").filter(digest=apikey_digest(raw_key)).first()
    if key is None or key.revoked_at is not None:
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def apikey_revoke(*, team: Team, key: ApiKey) -> None:
    """Revoke a key of this team (idempotent)."""
    ApiKey.objects.filter(pk=key.pk, team=team, revoked_at__isnull=True).update(revoked_at=timezone.now())
