"""Bearer-key authentication and the decorator every /v1/ view uses."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from generator.api.errors import error_from_exception, error_response
from generator.errors import GeneratorError
from generator.models import ApiKey
from generator.services.apikeys import apikey_authenticate

logger = logging.getLogger(__name__)


def api_endpoint(
    *,
    scope: str | None,
    methods: tuple[str, ...] = ("GET",),
    on_forbidden: Callable[[HttpRequest, ApiKey, HttpResponse], None] | None = None,
):
    """Wrap a /v1/ view: 405, 401, 403 in that order, then map GeneratorError to the envelope.

    The view gets request.api_key and request.team set. scope=None only needs a valid key.
    on_forbidden(request, key, response) may add headers to a 403 (the key is valid, so its team is known).
    """

    def decorator(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = error_response(
                    405, code="1005", type="general", message=f"method {request.method} is not allowed here"
                )
                response["Allow"] = ", ".join(methods)
                return response
            header = request.headers.get("Authorization", "")
            scheme, _, raw = header.partition(" ")
            key = apikey_authenticate(raw.strip()) if scheme.lower() == "bearer" else None
            if key is None:
                return error_response(401, code="111", type="auth", message="missing or invalid API key")
            if scope is not None and scope not in key.scopes:
                response = error_response(
                    403, code="112", type="auth", message=f"this API key lacks the '{scope}' scope"
                )
                if on_forbidden is not None:
                    on_forbidden(request, key, response)
                return response
            request.api_key = key
            request.team = key.team
            try:
                return view(request, *args, **kwargs)
            except GeneratorError as exc:
                return error_from_exception(exc)
            except Http404:
                return error_response(404, code="1004", type="general", message="not found")
            except Exception:
                # A bug must still answer in the envelope clients parse; the traceback goes to the log.
                logger.exception("unhandled error in %s", request.path)
                return error_response(500, code="1000", type="general", message="internal error")

        return wrapper

    return decorator
