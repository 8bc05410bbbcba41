"""The dashboard's Generate form: accepted once per form token, through the API's validator and create service.

The form carries a random token. Its idempotency key is `form:<token>:<digest of what was sent>`, held
with the same mechanism as the API's Idempotency-Key (services/idempotency.py): a double click or a
resent form gives back the job the first one started, charged once, and a repeat that arrives while
the first is still being accepted waits for it instead of failing. The same token with other values
(the user edited the form and sent it again) is a new key, so a new job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from generator.errors import Conflict, GeneratorError
from generator.models import Generation, Team
from generator.presenters import generation_accepted_to_api
from generator.services import idempotency
from generator.services.generations import generation_create, parse_generate_request
from generator.services.uploads import upload_discard, upload_store

FORM_KEY_PREFIX = "form:"
TOKEN_MAX_CHARS = 64
# A repeat that finds its twin still being accepted waits this long for it before giving up.
IN_FLIGHT_WAIT_S = 10.0


@dataclass(frozen=True)
class Submitted:
    generation: Generation
    replayed: bool  # True when this was a repeat and `generation` is the one the first submit started


def form_token_valid(token: str) -> bool:
    return 0 < len(token) <= TOKEN_MAX_CHARS and token.isascii() and token.isprintable()


def generation_submit(
    *, team: Team, user, body: dict, token: str, upload: bytes | None = None, upload_name: str = ""
) -> Submitted:
    """Validate and create a job like POST /v1/video/generate; the same token and values give the first job back.

    `body` is the API body the form stands for. With `upload`, the photo is stored first and becomes
    the input (its bytes, not its random stored name, identify the submit); a refused submit removes it.
    """
    identity = dict(body, input="upload:" + hashlib.sha256(upload).hexdigest()) if upload is not None else body
    key = f"{FORM_KEY_PREFIX}{token}:{idempotency.body_digest(identity)[:32]}" if form_token_valid(token) else None
    stored = None
    with idempotency.idempotency_guard(team=team, key=key, body=identity, wait_s=IN_FLIGHT_WAIT_S) as guard:
        if guard.replay is not None:
            if guard.replayed_generation_id is None:
                raise Conflict("this form was already sent; open Jobs to see what it started")
            return Submitted(generation=Generation.objects.get(pk=guard.replayed_generation_id), replayed=True)
        try:
            if upload is not None:
                stored = upload_store(team=team, user=user, data=upload)
                body = dict(body, input=stored)
            request = parse_generate_request(body, team=team)
            with transaction.atomic():
                result = generation_create(team=team, request=request, user=user, source_name=upload_name)
                generation = result.generation
                result_url = settings.GENERATOR_PUBLIC_URL.rstrip("/") + reverse(
                    "api:generation-detail", args=[generation.pk]
                )
                # The stored answer is the API's own, so the record reads like any other key's.
                payload = {"data": generation_accepted_to_api(generation, result_url=result_url)}
                guard.complete(status_code=200, response=payload, generation=generation)
        except GeneratorError:
            if stored:
                upload_discard(team=team, uri=stored)
            raise
    return Submitted(generation=generation, replayed=False)
