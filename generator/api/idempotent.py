"""Idempotency-Key on the API's creating POSTs (a generation, a batch): claim, replay, store, refuse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import JsonResponse

from generator.api.errors import parse_json_object
from generator.api.registry import ApiRequest
from generator.errors import GeneratorError
from generator.models import Generation
from generator.services import idempotency

# accept(body) -> (the answer's JSON, the generation it made or None, extra objects for the caller)
Accept = Callable[[dict], tuple[dict, Generation | None, Any]]


def idempotent_post(request: ApiRequest, accept: Accept) -> tuple[JsonResponse, Any]:
    """Parse the body (400), honour Idempotency-Key, and run `accept` in one transaction with the stored answer.

    Returns the response and what `accept` returned besides (None for a replay).
    """
    team = request.team
    body = parse_json_object(request)
    key = request.headers.get(idempotency.HEADER)
    claim = None
    if key is not None:
        key = idempotency.idempotency_key_check(key)
        claim = idempotency.idempotency_claim(team=team, key=key, digest=idempotency.body_digest(body))
        if claim.replay is not None:
            status_code, payload = claim.replay
            response = JsonResponse(payload, status=status_code)
            response["Idempotent-Replayed"] = "true"
            return response, None
    try:
        # One transaction: what is created and the stored response commit together or not at all.
        with transaction.atomic():
            payload, generation, extra = accept(body)
            if claim is not None:
                idempotency.idempotency_complete(
                    record=claim.record, status_code=200, response=payload, generation=generation
                )
    except BaseException as exc:
        if claim is not None:
            # The key stays bound to this body: another body is a 422, the same one is judged again.
            status_code = exc.status if isinstance(exc, GeneratorError) else 500
            idempotency.idempotency_refuse(record=claim.record, status_code=status_code)
        raise
    return JsonResponse(payload), extra
