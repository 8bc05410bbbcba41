"""The /v1/video/generate handlers: accept, list, get and cancel generations."""

from __future__ import annotations

from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import reverse

from generator.api.errors import error_from_exception, parse_json_object
from generator.api.registry import ApiRequest, read_query
from generator.contract.generate import GenerationListQuery, cursor_encode
from generator.errors import GeneratorError
from generator.models import PUBLIC_ID_MAX, ApiKey, Generation
from generator.presenters import generation_accepted_to_api, generation_to_api
from generator.selectors import generation_get, generation_page
from generator.services import idempotency
from generator.services.generations import generation_cancel as cancel_service
from generator.services.generations import generation_create, parse_generate_request
from generator.services.ratelimit import ratelimit_status


def _accept(request: ApiRequest) -> HttpResponse:
    """Run the checks after auth in the contract's order (400, 422, 429, 402) and create the job."""
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
            return response
    try:
        generate_request = parse_generate_request(body, team=team)
        # One transaction: the job, its hold and the stored response commit together or not at all.
        with transaction.atomic():
            result = generation_create(team=team, request=generate_request, api_key=request.api_key)
            generation = result.generation
            result_url = request.build_absolute_uri(reverse("api:generation-detail", args=[generation.pk]))
            payload = {"data": generation_accepted_to_api(generation, result_url=result_url)}
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
    response = JsonResponse(payload)
    for name, value in result.rate.headers().items():
        response[name] = value
    return response


def generate(request: ApiRequest) -> HttpResponse:
    """POST /v1/video/generate: accept a job; every answer carries the team's rate headers."""
    try:
        response = _accept(request)
    except GeneratorError as exc:
        response = error_from_exception(exc)
    if "RateLimit-Limit" not in response:
        for name, value in ratelimit_status(team=request.team).headers().items():
            response[name] = value
    return response


def rate_headers_on_forbidden(key: ApiKey, response: HttpResponse) -> None:
    """A 403 to POST /v1/video/generate still carries the team's rate headers (the key is valid)."""
    for name, value in ratelimit_status(team=key.team).headers().items():
        response[name] = value


def generation_index(request: ApiRequest) -> HttpResponse:
    """GET /v1/video/generate: the team's generations, newest first, one page at a time."""
    query: GenerationListQuery = read_query(request)
    page = generation_page(team=request.team, status=query.status, after=query.after, limit=query.limit)
    next_cursor = cursor_encode(page[query.limit - 1]) if len(page) > query.limit else None
    return JsonResponse({"data": [generation_to_api(g) for g in page[: query.limit]], "next_cursor": next_cursor})


def _own_generation(request: ApiRequest, pk: int) -> Generation:
    generation = generation_get(team=request.team, pk=pk) if 0 <= pk <= PUBLIC_ID_MAX else None
    if generation is None:
        raise Http404
    return generation


def generation_detail(request: ApiRequest, pk: int) -> HttpResponse:
    """GET /v1/video/generate/{id}: one of the team's generations; another team's id is a 404."""
    return JsonResponse({"data": generation_to_api(_own_generation(request, pk))})


def generation_cancel(request: ApiRequest, pk: int) -> HttpResponse:
    """POST /v1/video/generate/{id}/cancel: cancel a queued generation and refund it; 409 once it has started."""
    generation = cancel_service(team=request.team, generation=_own_generation(request, pk))
    return JsonResponse({"data": generation_to_api(generation)})
