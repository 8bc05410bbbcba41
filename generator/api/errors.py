"""The error envelope every non-2xx /v1/ answer carries, and JSON body parsing."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse

from generator.errors import GeneratorError, MalformedBody, MethodNotAllowed, RateLimited


def error_body(*, code: str, type: str, message: str, details: dict | None = None) -> dict:
    return {"error_code": code, "error_type": type, "error_message": message, "error_details": details or {}}


def error_response(
    status: int, *, code: str, type: str, message: str, details: dict | None = None, headers: dict | None = None
) -> JsonResponse:
    """Answer with the envelope; a 429 nests it under "detail" as the reference API does."""
    body = error_body(code=code, type=type, message=message, details=details)
    if status == 429:
        body = {"detail": body}
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def method_not_allowed(request, allowed: tuple[str, ...]) -> JsonResponse:
    """Answer 405 (code 1005) with the Allow header."""
    response = error_from_exception(MethodNotAllowed(f"method {request.method} is not allowed here"))
    response["Allow"] = ", ".join(allowed)
    return response


def error_from_exception(exc: GeneratorError) -> JsonResponse:
    headers = exc.rate.headers(refused=True) if isinstance(exc, RateLimited) else None
    return error_response(
        exc.status, code=exc.code, type=exc.type, message=exc.message, details=exc.details, headers=headers
    )


def parse_json_object(request) -> dict:
    """Return the request body as a JSON object, or raise MalformedBody (400 / 1000)."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise MalformedBody(f"the request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes") from None
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError, bad UTF-8 and integers past Python's digit limit.
        raise MalformedBody("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise MalformedBody("the request body must be a JSON object")
    return body
