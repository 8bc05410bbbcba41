"""Upstream webhooks: a signed address per job and attempt; a verified call only makes the next look sooner (docs/engines.md).

The address `/hooks/upstream/<token>/` is given to an upstream at submit, only when its
provider signs webhooks (Capabilities.webhooks) and this server's GENERATOR_PUBLIC_URL is one
the upstream can reach. The token names the job and its attempt, signed with the server's
secret (its own salt), so it cannot be guessed or moved to another job. A call whose token is
bad or too old, whose body is too large, or whose signature the provider does not accept
changes nothing. One that passes hands the job to a poll task at once; the look, not the
webhook, decides what happened (SPEC 11): the webhook's body is never trusted for the result.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Mapping
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from generator.errors import GeneratorError, NotFound
from generator.models import Generation
from generator.services.engine_connections import connection_of
from generator.services.links import public_base_url
from generator.services.queue import enqueue_on_commit
from generator.services.upstream_jobs import CLAIM_S, LONGEST_LOOK_S, POLL_TASK
from generator.upstream.registry import get_provider

WEBHOOK_SALT = "generator.upstream-webhooks"
# Replicate's and fal's webhook bodies are the prediction or the result's JSON, well under this.
WEBHOOK_MAX_BYTES = 1024 * 1024
# A token outlives the upstream deadline by this much: an upstream may retry a late webhook.
TOKEN_GRACE_S = 3600

Status = Generation.Status
Stage = Generation.Stage


class WebhookRefused(GeneratorError):
    """The signature over the body is missing, bad or stale: answer 401, change nothing."""

    status, code, type = 401, "110", "auth"


class WebhookTooLarge(GeneratorError):
    status, code, type = 413, "1013", "general"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=WEBHOOK_SALT)


def upstream_webhook_url(generation: Generation) -> str:
    """Return the webhook address for this job's attempt, or "" when this server cannot be reached from outside."""
    base = public_base_url()
    if base is None:
        return ""
    token = _signer().sign(f"{generation.uuid}:{generation.attempts}")
    return base + reverse("upstream-webhook", kwargs={"token": token})


def _generation_of(token: str) -> tuple[Generation, int]:
    max_age = settings.GENERATOR_UPSTREAM_DEADLINE_S + TOKEN_GRACE_S
    try:
        value = _signer().unsign(token, max_age=timedelta(seconds=max_age))
        generation_uuid, _, attempt = value.partition(":")
        parsed, attempt_number = uuid_module.UUID(generation_uuid), int(attempt)
    except (signing.BadSignature, ValueError):
        raise NotFound("unknown webhook address") from None
    generation = Generation.objects.select_related("engine").filter(uuid=parsed).first()
    if generation is None or generation.engine is None:
        raise NotFound("unknown webhook address")
    return generation, attempt_number


def upstream_webhook_receive(*, token: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Verify an upstream's webhook and book an immediate look at its job; return True when one was booked.

    Raises NotFound (bad or expired token, job or connection gone), WebhookTooLarge, or
    WebhookRefused (the provider did not accept the signature). A job that is no longer
    waiting on this attempt is left as it is (False): the webhook came late or early, and the
    regular looks take care of it.
    """
    if len(body) > WEBHOOK_MAX_BYTES:
        raise WebhookTooLarge(f"the webhook body is larger than {WEBHOOK_MAX_BYTES} bytes")
    generation, attempt = _generation_of(token)
    engine = generation.engine
    assert engine is not None
    if not get_provider(engine.type).verify_webhook(connection_of(engine), headers=headers, body=body):
        raise WebhookRefused("the webhook's signature was not accepted")
    now = timezone.now()
    # The claim is the ticker's (upstream_polls_due): a job already handed to a poll task has its
    # next look CLAIM_S away, so it is not handed out twice; one told by a 429 to wait longer
    # than a regular look keeps waiting.
    booked = Generation.objects.filter(
        pk=generation.pk,
        status=Status.PROCESSING,
        stage=Stage.WAITING,
        attempts=attempt,
        next_poll_at__lte=now + timedelta(seconds=LONGEST_LOOK_S),
    ).update(next_poll_at=now + timedelta(seconds=CLAIM_S), updated_at=now)
    if booked:
        enqueue_on_commit(POLL_TASK, str(generation.pk))
    return bool(booked)
