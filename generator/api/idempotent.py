"""Idempotency-Key on the API's creating POSTs (a generation, a batch): claim, replay, store, refuse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import JsonResponse

from generator.api.errors import parse_json_object
from generator.api.registry import ApiRequest
from generator.models import Generation
from generator.services import idempotency

# accept(body, or what prepare made of it) -> (the answer's JSON, the generation it made or None, extras)
Accept = Callable[[Any], tuple[dict, Generation | None, Any]]


def idempotent_post(
    request: ApiRequest, accept: Accept, *, prepare: Callable[[dict], Any] | None = None
) -> tuple[JsonResponse, Any]:
    """Parse the body (400), honour Idempotency-Key, and run `accept` in one transaction with the stored answer.

    `prepare`, if given, runs first outside that transaction (slow read-only checks, such as listing a
    folder, must not hold SQLite's write lock) and `accept` gets what it returns instead of the body.
    Returns the response and what `accept` returned besides (None for a replay).
    """
    body = parse_json_object(request)
    key = request.headers.get(idempotency.HEADER)
    if key is not None:
        key = idempotency.idempotency_key_check(key)
    # The key stays bound to this body on a refusal: another body is a 422, the same one is judged again.
    with idempotency.idempotency_guard(team=request.team, key=key, body=body) as guard:
        if guard.replay is not None:
            status_code, replayed = guard.replay
            response = JsonResponse(replayed, status=status_code)
            response["Idempotent-Replayed"] = "true"
            return response, None
        prepared = prepare(body) if prepare is not None else body
        # One transaction: what is created and the stored response commit together or not at all.
        with transaction.atomic():
            payload, generation, extra = accept(prepared)
            guard.complete(status_code=200, response=payload, generation=generation)
    return JsonResponse(payload), extra
