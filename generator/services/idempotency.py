"""Idempotency-Key on POST /v1/video/generate and /v1/video/batches (docs/api.md, "Extensions").

The in-flight row is inserted and committed on its own before the job is created, so the unique
(team, key) constraint makes concurrent twins wait for it and then see it. An accepted job's
response is stored and replayed. A refusal (422, 429, 402, ...) keeps the row with its body digest
and status but no response: the same key with another body is still a 422, while the same body
is judged afresh (e.g. after a top-up), and if accepted that answer becomes the one replayed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from generator.errors import Conflict, GeneratorError, ValidationFailed
from generator.models import Generation, IdempotencyRecord, Team

KEY_MAX_CHARS = 255
TTL_S = 86_400
# An in-flight row older than this belongs to a request that died before finishing; the key is freed.
IN_FLIGHT_STALE_S = 120
HEADER = "Idempotency-Key"
_CLAIM_ATTEMPTS = 3
_IN_FLIGHT_POLL_S = 0.2


@dataclass(frozen=True)
class Claim:
    """Either a fresh in-flight record this request owns, or a stored response to replay."""

    record: IdempotencyRecord
    owned: bool

    @property
    def replay(self) -> tuple[int | None, Any] | None:
        if self.owned:
            return None
        return self.record.status_code, self.record.response


def idempotency_key_check(raw: str) -> str:
    """Return the header value if it is 1..255 printable characters, else raise ValidationFailed."""
    if not raw or len(raw) > KEY_MAX_CHARS or not raw.isprintable():
        message = f"must be 1 to {KEY_MAX_CHARS} printable characters"
        raise ValidationFailed(f"{HEADER}: {message}", details={HEADER: [message]})
    return raw


def body_digest(body: Any) -> str:
    """Return a digest of a JSON body that ignores key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def idempotency_claim(*, team: Team, key: str, digest: str, now: datetime | None = None) -> Claim:
    """Take the key for this request, or return the first response; 422 other body, 409 in flight."""
    now = now or timezone.now()
    for _ in range(_CLAIM_ATTEMPTS):
        IdempotencyRecord.objects.filter(team=team, key=key, created_at__lte=now - timedelta(seconds=TTL_S)).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(team=team, key=key, body_digest=digest, created_at=now)
            return Claim(record=record, owned=True)
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(team=team, key=key).first()
        if existing is None:
            continue  # released between our insert and our read: try to take it again
        if existing.body_digest != digest:
            message = "was already used with a different request body"
            raise ValidationFailed(f"{HEADER}: {message}", details={HEADER: [message]})
        if _is_refused(existing):
            # Same body as a refused attempt: take the key back in flight and judge the request again.
            retaken = IdempotencyRecord.objects.filter(
                pk=existing.pk, body_digest=digest, status_code=existing.status_code
            ).update(status_code=None, response=None, generation=None, created_at=now)
            if retaken == 1:
                existing.refresh_from_db()
                return Claim(record=existing, owned=True)
            continue  # a twin took it first: look again
        if existing.status_code is not None:
            return Claim(record=existing, owned=False)
        stale = now - timedelta(seconds=IN_FLIGHT_STALE_S)
        if existing.created_at < stale:
            IdempotencyRecord.objects.filter(pk=existing.pk, status_code__isnull=True, created_at__lt=stale).delete()
            continue
        raise Conflict("a request with this Idempotency-Key is still being processed; retry in a moment")
    raise Conflict("a request with this Idempotency-Key is still being processed; retry in a moment")


def idempotency_complete(
    *, record: IdempotencyRecord, status_code: int, response: Any, generation: Generation | None = None
) -> None:
    """Store the response of an accepted request for replay."""
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=status_code, response=response, generation=generation
    )


def _is_refused(record: IdempotencyRecord) -> bool:
    return record.status_code is not None and record.status_code >= 400


def idempotency_refuse(*, record: IdempotencyRecord, status_code: int) -> None:
    """Mark an in-flight key's request as refused: its body stays bound to the key, nothing is replayed."""
    if status_code < 400:
        raise ValueError("a refusal has an error status")
    IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).update(
        status_code=status_code, response=None
    )


def idempotency_purge(*, now: datetime | None = None) -> int:
    """Delete records older than 24 h; return how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=TTL_S)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lte=cutoff).delete()
    return deleted


@dataclass
class Guard:
    """One request holding an idempotency key (or none): replay the first answer, or complete this one."""

    claim: Claim | None

    @property
    def replay(self) -> tuple[int | None, Any] | None:
        return self.claim.replay if self.claim is not None else None

    @property
    def replayed_generation_id(self) -> int | None:
        return self.claim.record.generation_id if self.claim is not None and not self.claim.owned else None

    def complete(self, *, status_code: int, response: Any, generation: Generation | None) -> None:
        """Store this request's accepted answer for replay (inside the transaction that created the job)."""
        if self.claim is not None:
            idempotency_complete(
                record=self.claim.record, status_code=status_code, response=response, generation=generation
            )


def _claim_or_wait(*, team: Team, key: str, digest: str, wait_s: float) -> Claim:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return idempotency_claim(team=team, key=key, digest=digest)
        except Conflict:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_IN_FLIGHT_POLL_S)


@contextmanager
def idempotency_guard(*, team: Team, key: str | None, body: Any, wait_s: float = 0.0) -> Iterator[Guard]:
    """Hold `key` around accepting one request; without a key the guard does nothing.

    `guard.replay` is the first answer when this is a repeat. An exception inside the block marks the
    key refused (its body stays bound to it) and propagates. A repeat that finds the first request
    still in flight is a Conflict at once (the API's 409), or after waiting up to `wait_s` for it.
    """
    if key is None:
        yield Guard(claim=None)
        return
    claim = _claim_or_wait(team=team, key=key, digest=body_digest(body), wait_s=wait_s)
    guard = Guard(claim=claim)
    if not claim.owned:
        yield guard
        return
    try:
        yield guard
    except BaseException as exc:
        status_code = exc.status if isinstance(exc, GeneratorError) else 500
        idempotency_refuse(record=claim.record, status_code=status_code)
        raise
