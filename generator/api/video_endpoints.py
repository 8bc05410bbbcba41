"""The /v1/video/generate endpoints: accept, list, get and cancel generations (SPEC 2, 10)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from generator.api.auth import api_endpoint
from generator.api.errors import error_from_exception, parse_json_object
from generator.errors import GeneratorError, ValidationFailed
from generator.models import ApiKey, Generation
from generator.presenters import generation_accepted_to_api, generation_to_api
from generator.schemas import parse_generate_request
from generator.selectors import generation_get, generation_list
from generator.services import idempotency
from generator.services.generations import generation_cancel as cancel_service
from generator.services.generations import generation_create
from generator.services.ratelimit import ratelimit_status

SCOPE = "video_generation"
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 20, 100
MAX_ID = 2**63 - 1  # BIGINT: a larger id cannot exist, and the database would refuse to compare it
STATUSES = tuple(Generation.Status.values)


# --- POST /v1/video/generate ------------------------------------------------------------------


def _accept(request: HttpRequest) -> HttpResponse:
    """Run the checks after auth in SPEC 10's order (400, 422, 429, 402) and create the job."""
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


def _generate_post(request: HttpRequest) -> HttpResponse:
    try:
        response = _accept(request)
    except GeneratorError as exc:
        response = error_from_exception(exc)
    if "RateLimit-Limit" not in response:
        for name, value in ratelimit_status(team=request.team).headers().items():
            response[name] = value
    return response


# --- GET /v1/video/generate -------------------------------------------------------------------


def _encode_cursor(generation: Generation) -> str:
    raw = f"{generation.created_at.isoformat()}|{generation.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    invalid = ValidationFailed("cursor: not a cursor from this API", details={"cursor": ["not a cursor from this API"]})
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment_text, _, pk_text = raw.rpartition("|")
        moment = parse_datetime(moment_text)
        pk = int(pk_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    if moment is None or moment.tzinfo is None or not 0 <= pk <= MAX_ID:
        raise invalid
    return moment, pk


def _list_params(request: HttpRequest) -> tuple[str | None, int, tuple[datetime, int] | None]:
    details: dict[str, list[str]] = {}
    status = request.GET.get("status") or None
    if status is not None:
        status = status.upper()
        if status not in STATUSES:
            details["status"] = [f"must be one of {', '.join(STATUSES)}"]
    limit = LIST_LIMIT_DEFAULT
    raw_limit = request.GET.get("limit")
    if raw_limit not in (None, ""):
        if (
            raw_limit.isascii()
            and raw_limit.isdigit()
            and len(raw_limit) <= 4
            and 1 <= int(raw_limit) <= LIST_LIMIT_MAX
        ):
            limit = int(raw_limit)
        else:
            details["limit"] = [f"must be a whole number from 1 to {LIST_LIMIT_MAX}"]
    cursor = None
    raw_cursor = request.GET.get("cursor")
    if raw_cursor:
        try:
            cursor = _decode_cursor(raw_cursor)
        except ValidationFailed as exc:
            details.update(exc.details)
    if details:
        first, messages = next(iter(details.items()))
        raise ValidationFailed(f"{first}: {messages[0]}", details=details)
    return status, limit, cursor


def _generate_list(request: HttpRequest) -> HttpResponse:
    status, limit, cursor = _list_params(request)
    qs = generation_list(team=request.team, status=status)
    if cursor is not None:
        moment, pk = cursor
        qs = qs.filter(Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=pk))
    page = list(qs[: limit + 1])
    next_cursor = _encode_cursor(page[limit - 1]) if len(page) > limit else None
    return JsonResponse({"data": [generation_to_api(g) for g in page[:limit]], "next_cursor": next_cursor})


def _rate_headers_on_post(request: HttpRequest, key: ApiKey, response: HttpResponse) -> None:
    # SPEC 10: every POST answer after auth carries the team's rate headers, a 403 included.
    if request.method == "POST":
        for name, value in ratelimit_status(team=key.team).headers().items():
            response[name] = value


@api_endpoint(scope=SCOPE, methods=("GET", "POST"), on_forbidden=_rate_headers_on_post)
def generate(request: HttpRequest) -> HttpResponse:
    """POST: accept a job. GET: list the team's jobs, newest first."""
    if request.method == "POST":
        return _generate_post(request)
    return _generate_list(request)


# --- one generation -----------------------------------------------------------------------------


def _own_generation(request: HttpRequest, pk: int) -> Generation:
    generation = generation_get(team=request.team, pk=pk) if 0 <= pk <= MAX_ID else None
    if generation is None:
        raise Http404
    return generation


@api_endpoint(scope=SCOPE, methods=("GET",))
def generation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Return one of the team's generations; another team's id is a 404."""
    return JsonResponse({"data": generation_to_api(_own_generation(request, pk))})


@api_endpoint(scope=SCOPE, methods=("POST",))
def generation_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a queued generation and refund it; 409 once it has started."""
    generation = cancel_service(team=request.team, generation=_own_generation(request, pk))
    return JsonResponse({"data": generation_to_api(generation)})
