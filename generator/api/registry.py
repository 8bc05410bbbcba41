"""How a /v1/ endpoint is declared, routed and guarded; the endpoints themselves are listed in api/endpoints.py.

One Endpoint row says everything the server and the OpenAPI document need: method, path, the
handler, the scope a key must have, the request model (body or query) and the answers. The
guard runs the checks every endpoint shares, in this order: 405, 401, 403; then the handler,
whose GeneratorError becomes the error envelope.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel

from generator.api.errors import error_from_exception, method_not_allowed, parse_json_object
from generator.contract.base import RequestModel
from generator.errors import Forbidden, GeneratorError, InternalError, NotFound, Unauthorized
from generator.models import ApiKey, Team
from generator.services.apikeys import apikey_authenticate, apikey_can_manage

logger = logging.getLogger(__name__)

PUBLIC = "public"  # the scope of endpoints that need no key
ANY_KEY = None  # the scope of endpoints any valid key may call
_PARAM = re.compile(r"\{(\w+)\}")

Handler = Callable[..., HttpResponseBase]


class ApiRequest(HttpRequest):
    """A /v1/ request once the guard has passed: the endpoint, and for keyed endpoints the key and its team."""

    endpoint: Endpoint
    api_key: ApiKey
    team: Team


@dataclass(frozen=True)
class Header:
    """A header of a request or an answer, as the document describes it."""

    name: str
    description: str
    schema: dict = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Answer:
    """One documented answer: its status, body model (None: the error envelope) and headers."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    headers: tuple[Header, ...] = ()
    schema: dict | None = None  # a plain JSON schema instead of a model
    media_type: str = "application/json"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as in the document: /v1/video/generate/{id}
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    scope: str | None  # a key scope, ANY_KEY or PUBLIC
    answers: tuple[Answer, ...]
    body: type[RequestModel] | None = None
    query: type[RequestModel] | None = None
    request_headers: tuple[Header, ...] = ()
    description: str = ""
    id_description: str = ""  # the {id} path parameter, if the path has one
    example: dict | None = None
    # Only keys whose creator is an owner or admin now may call it (docs/security.md).
    managers_only: bool = False
    # Called on a 403 with the valid key, so the answer can still carry the team's headers.
    on_forbidden: Callable[[ApiKey, HttpResponse], None] | None = None


@dataclass(frozen=True)
class Resource:
    """What the endpoints of one resource share: the document's tag, the scope a key needs, what `{id}` names."""

    tag: str
    scope: str | None  # a key scope, ANY_KEY or PUBLIC
    id_description: str = ""

    def endpoint(self, method: str, path: str, handler: Handler, **fields: Any) -> Endpoint:
        """One endpoint of this resource; a path with `{id}` documents it as the resource's id."""
        id_description = self.id_description if "{id}" in path else ""
        return Endpoint(method, path, handler, tag=self.tag, scope=self.scope, id_description=id_description, **fields)


_REGISTERED: list[Endpoint] = []


def register(*endpoints: Endpoint) -> tuple[Endpoint, ...]:
    """Add endpoints to the API (api/endpoints.py lists them all, in the document's order)."""
    _REGISTERED.extend(endpoints)
    return endpoints


def registered() -> tuple[Endpoint, ...]:
    """Every endpoint of the API, in the order they were registered."""
    return tuple(_REGISTERED)


def read_body(request: ApiRequest) -> Any:
    """Parse the JSON body (400 if it is not an object) and validate it with the endpoint's model (422)."""
    body = parse_json_object(request)
    model = request.endpoint.body
    return model.parse(body) if model is not None else body


def read_query(request: ApiRequest) -> Any:
    """Validate the query string with the endpoint's query model (422); unknown parameters are ignored."""
    model = request.endpoint.query
    assert model is not None, f"{request.endpoint.operation_id} declares no query model"
    return model.parse({name: request.GET.get(name) for name in model.model_fields if name in request.GET})


def _authenticate(request: HttpRequest) -> ApiKey | None:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    return apikey_authenticate(raw.strip()) if scheme.lower() == "bearer" else None


def _refusal(endpoint: Endpoint, key: ApiKey) -> Forbidden | None:
    """The 403 for a valid key this endpoint refuses: a missing scope, or a creator who lost the role."""
    if endpoint.scope is not ANY_KEY and endpoint.scope not in key.scopes:
        return Forbidden(f"this API key lacks the '{endpoint.scope}' scope")
    if endpoint.managers_only and not apikey_can_manage(key):
        return Forbidden("the member who created this API key is no longer an owner or admin of the team")
    return None


def _guarded(endpoint: Endpoint, request: HttpRequest, kwargs: dict) -> HttpResponseBase:
    api_request: ApiRequest = request  # type: ignore[assignment]
    api_request.endpoint = endpoint
    if endpoint.scope != PUBLIC:
        key = _authenticate(request)
        if key is None:
            return error_from_exception(Unauthorized("missing or invalid API key"))
        refusal = _refusal(endpoint, key)
        if refusal is not None:
            response = error_from_exception(refusal)
            if endpoint.on_forbidden is not None:
                endpoint.on_forbidden(key, response)
            return response
        api_request.api_key = key
        api_request.team = key.team
    try:
        return endpoint.handler(api_request, **kwargs)
    except GeneratorError as exc:
        return error_from_exception(exc)
    except Http404:
        return error_from_exception(NotFound("not found"))
    except Exception:
        # A bug must still answer in the envelope clients parse; the traceback goes to the log.
        logger.exception("unhandled error in %s", request.path)
        return error_from_exception(InternalError("internal error"))


def _dispatcher(endpoints: Sequence[Endpoint]) -> Callable[..., HttpResponseBase]:
    by_method = {endpoint.method: endpoint for endpoint in endpoints}
    if "GET" in by_method and by_method["GET"].scope == PUBLIC:
        by_method.setdefault("HEAD", by_method["GET"])
    allowed = tuple(by_method)

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
        endpoint = by_method.get(request.method or "")
        if endpoint is None:
            return method_not_allowed(request, allowed)
        return _guarded(endpoint, request, kwargs)

    view.__name__ = endpoints[0].operation_id
    return view


def django_route(document_path: str) -> str:
    """Turn /v1/video/generate/{id} into the route video/generate/<int:pk> below /v1/."""
    route = document_path.removeprefix("/v1/")
    return _PARAM.sub(lambda match: "<int:pk>" if match.group(1) == "id" else f"<str:{match.group(1)}>", route)


def url_patterns(endpoints: Iterable[Endpoint], names: dict[str, str]) -> list[URLPattern]:
    """One URL per path; its view picks the endpoint by method. `names` gives each path its URL name."""
    grouped: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        grouped.setdefault(endpoint.path, []).append(endpoint)
    return [
        path(django_route(document_path), _dispatcher(group), name=names[document_path])
        for document_path, group in grouped.items()
    ]
