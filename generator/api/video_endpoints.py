"""The /v1/video/generate handlers: accept, list, get and cancel generations."""

from __future__ import annotations

from django.http import Http404, HttpResponse, JsonResponse
from django.urls import reverse

from generator.api.errors import error_from_exception
from generator.api.idempotent import idempotent_post
from generator.api.registry import ApiRequest, read_query
from generator.contract.generate import GenerationListQuery, cursor_encode
from generator.errors import GeneratorError
from generator.models import PUBLIC_ID_MAX, ApiKey, Generation
from generator.presenters import generation_accepted_to_api, generation_to_api
from generator.selectors import generation_get, generation_page
from generator.services.generations import generation_cancel as cancel_service
from generator.services.generations import generation_create, parse_generate_request
from generator.services.ratelimit import ratelimit_status


def _accept(request: ApiRequest) -> HttpResponse:
    """Run the checks after auth in the contract's order (400, 422, 429, 402) and create the job."""

    def accept(body: dict):
        generate_request = parse_generate_request(body, team=request.team)
        result = generation_create(team=request.team, request=generate_request, api_key=request.api_key)
        generation = result.generation
        result_url = request.build_absolute_uri(reverse("api:generation-detail", args=[generation.pk]))
        return {"data": generation_accepted_to_api(generation, result_url=result_url)}, generation, result.rate

    response, rate = idempotent_post(request, accept)
    if rate is not None:
        for name, value in rate.headers().items():
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
