"""Webhooks (docs/api.md): POST a finished generation (or batch) to the team's URL, signed, retried with back-off."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import schedule

from generator import netpolicy
from generator.crypto import decrypt_json, encrypt_json
from generator.errors import ValidationFailed
from generator.fetch import FetchError, post_bytes
from generator.models import Batch, Generation, Team, WebhookDelivery
from generator.presenters import batch_to_api, generation_to_api
from generator.services.queue import enqueue_on_commit

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Claid-Hmac-SHA256"
WEBHOOK_MAX_ATTEMPTS = 5
# Wait before attempts 2, 3, 4 and 5.
WEBHOOK_BACKOFF_S = (30, 120, 600, 1800)
WEBHOOK_TASK = "generator.webhook_tasks.webhook_deliver_task"
BATCH_WEBHOOK_TASK = "generator.webhook_tasks.batch_webhook_deliver_task"
# Which event a delivery is: generation.finished (DONE/ERROR) or batch.finished (done/cancelled).
EVENT_HEADER = "X-Generator-Event"
WEBHOOK_URL_MAX_CHARS = 512
_SECRET_RE = re.compile(r"[\x21-\x7e]{16,128}")
_FINISHED = (Generation.Status.DONE, Generation.Status.ERROR)
_BATCH_FINISHED = (Batch.State.DONE, Batch.State.CANCELLED)


def webhook_signature(*, secret: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of the raw body under the team's secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_secret(team: Team) -> str:
    """Return the team's signing secret (stored encrypted, like storage credentials)."""
    return decrypt_json(team.webhook_secret_encrypted).get("secret", "")


def webhook_configure(*, team: Team, url: str, secret: str | None = None) -> str:
    """Set (or, with an empty url, clear) the team's webhook and return its signing secret."""
    url = (url or "").strip()
    if not url:
        team.webhook_url, team.webhook_secret_encrypted = "", ""
        team.save(update_fields=["webhook_url", "webhook_secret_encrypted", "updated_at"])
        return ""
    if len(url) > WEBHOOK_URL_MAX_CHARS:
        raise ValidationFailed(
            "invalid webhook", details={"webhook_url": [f"at most {WEBHOOK_URL_MAX_CHARS} characters"]}
        )
    try:
        netpolicy.check_url_syntax(
            url, ports=settings.GENERATOR_FETCH_PORTS, allow_hosts=settings.GENERATOR_FETCH_ALLOW_HOSTS
        )
    except netpolicy.UrlRejected as exc:
        raise ValidationFailed("invalid webhook", details={"webhook_url": [str(exc)]}) from None
    if secret is not None and not _SECRET_RE.fullmatch(secret):
        raise ValidationFailed(
            "invalid webhook",
            details={"webhook_secret": ["16 to 128 printable characters without spaces"]},
        )
    # Keep a working secret when only the URL changes; receivers would otherwise start rejecting.
    secret = secret or webhook_secret(team) or secrets.token_hex(32)
    team.webhook_url, team.webhook_secret_encrypted = url, encrypt_json({"secret": secret})
    team.save(update_fields=["webhook_url", "webhook_secret_encrypted", "updated_at"])
    return secret


def webhook_deliver_later(generation_id: int) -> None:
    """Queue the first delivery attempt for a finished generation once the transaction commits."""
    if Generation.objects.filter(pk=generation_id).exclude(team__webhook_url="").exists():
        enqueue_on_commit(WEBHOOK_TASK, generation_id, 1)


def batch_webhook_deliver_later(batch_id: int) -> None:
    """Queue the first delivery attempt for a batch that finished (done or cancelled) once the transaction commits."""
    if Batch.objects.filter(pk=batch_id).exclude(team__webhook_url="").exists():
        enqueue_on_commit(BATCH_WEBHOOK_TASK, batch_id, 1)


def webhook_body(generation: Generation) -> bytes:
    """Return the raw JSON body: the same "data" object the GET endpoint answers."""
    return json.dumps({"data": generation_to_api(generation)}, cls=DjangoJSONEncoder).encode()


def batch_webhook_body(batch: Batch) -> bytes:
    """Return the raw JSON body for a finished batch: the "data" of GET /v1/video/batches/{id}, without items."""
    return json.dumps({"data": batch_to_api(batch)}, cls=DjangoJSONEncoder).encode()


@dataclass(frozen=True)
class _Subject:
    """What a delivery is about: a generation (docs/api.md) or a batch (docs/batches.md)."""

    model: type[Generation] | type[Batch]
    field: str  # WebhookDelivery's foreign key to it
    event: str
    task: str
    is_final: Callable[[Any], bool]
    body: Callable[[Any], bytes]


_GENERATION = _Subject(
    Generation,
    "generation",
    "generation.finished",
    WEBHOOK_TASK,
    lambda generation: generation.status in _FINISHED,
    webhook_body,
)
_BATCH = _Subject(
    Batch,
    "batch",
    "batch.finished",
    BATCH_WEBHOOK_TASK,
    lambda batch: batch.state in _BATCH_FINISHED,
    batch_webhook_body,
)


def _claim_attempt(subject: _Subject, pk: int, attempt: int) -> tuple[Any, WebhookDelivery] | None:
    """Record that this attempt is being made, unless it was made already or is no longer needed."""
    with transaction.atomic():
        found = subject.model.objects.select_for_update().select_related("team").filter(pk=pk).first()
        if found is None or not subject.is_final(found) or not found.team.webhook_url:
            return None
        deliveries = WebhookDelivery.objects.filter(**{subject.field: found})
        # The broker may run a task twice; a second run of the same attempt, or any run after a
        # success, must not POST again.
        if deliveries.filter(attempt=attempt).exists() or deliveries.filter(status_code__range=(200, 299)).exists():
            return None
        delivery = WebhookDelivery.objects.create(
            **{subject.field: found}, url=found.team.webhook_url, attempt=attempt, error="sending"
        )
    return found, delivery


def webhook_deliver(*, generation_id: int, attempt: int = 1) -> WebhookDelivery | None:
    """Make one signed delivery attempt for a generation, log it, and schedule the next one if it failed."""
    return _deliver(_GENERATION, generation_id, attempt)


def batch_webhook_deliver(*, batch_id: int, attempt: int = 1) -> WebhookDelivery | None:
    """Make one signed delivery attempt for a finished batch, log it, and schedule the next one if it failed."""
    return _deliver(_BATCH, batch_id, attempt)


def _deliver(subject: _Subject, pk: int, attempt: int) -> WebhookDelivery | None:
    claimed = _claim_attempt(subject, pk, attempt)
    if claimed is None:
        return None
    found, delivery = claimed
    body = subject.body(found)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: webhook_signature(secret=webhook_secret(found.team), body=body),
        "X-Generator-Delivery-Attempt": str(attempt),
        EVENT_HEADER: subject.event,
    }
    # Scheduled before the POST so a worker that dies mid-delivery still leaves a next attempt.
    _schedule_retry(subject, pk, attempt)
    try:
        status = post_bytes(delivery.url, content=body, headers=headers)
    except FetchError as exc:
        delivery.status_code, delivery.error = None, str(exc)[:500]
    else:
        delivery.status_code = status
        delivery.error = "" if 200 <= status < 300 else f"server answered {status}"
    delivery.save(update_fields=["status_code", "error"])
    if delivery.error:
        logger.warning("webhook attempt %s for %s %s failed: %s", attempt, subject.field, pk, delivery.error)
    else:
        _cancel_retry(subject, pk, attempt)
    return delivery


def _retry_name(subject: _Subject, pk: int, attempt: int) -> str:
    if subject is _GENERATION:  # the name generation retries always had
        return f"webhook:{pk}:{attempt + 1}"
    return f"webhook:{subject.field}:{pk}:{attempt + 1}"


def _schedule_retry(subject: _Subject, pk: int, attempt: int) -> None:
    if attempt >= WEBHOOK_MAX_ATTEMPTS:
        return
    delay_s = WEBHOOK_BACKOFF_S[min(attempt, len(WEBHOOK_BACKOFF_S)) - 1]
    # django-q2 refuses a duplicate name, so a repeated task cannot schedule the same retry twice.
    with contextlib.suppress(IntegrityError):
        schedule(
            subject.task,
            pk,
            attempt + 1,
            name=_retry_name(subject, pk, attempt),
            schedule_type=Schedule.ONCE,
            next_run=timezone.now() + timedelta(seconds=delay_s),
        )


def _cancel_retry(subject: _Subject, pk: int, attempt: int) -> None:
    Schedule.objects.filter(name=_retry_name(subject, pk, attempt)).delete()
