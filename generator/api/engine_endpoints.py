"""The /v1/engines handlers: list (builtin first), connect, read, change and disconnect engine connections."""

from __future__ import annotations

from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.debug import sensitive_variables

from generator.api.registry import ApiRequest, read_body
from generator.contract.engines import EngineCreate, EngineUpdate
from generator.models import PUBLIC_ID_MAX, EngineConnection
from generator.selectors import engine_get
from generator.services.engine_connections import (
    engine_connect,
    engine_delete,
    engine_to_api,
    engine_update,
    engines_to_api,
)


def engine_index(request: ApiRequest) -> HttpResponse:
    return JsonResponse({"data": engines_to_api(team=request.team)})


@sensitive_variables()
def engine_add(request: ApiRequest) -> HttpResponse:
    body: EngineCreate = read_body(request)
    engine = engine_connect(team=request.team, user=getattr(request.api_key, "created_by", None), request=body)
    return JsonResponse({"data": engine_to_api(engine, team=request.team)}, status=201)


def _own_engine(request: ApiRequest, pk: int) -> EngineConnection:
    engine = engine_get(team=request.team, pk=pk) if 0 <= pk <= PUBLIC_ID_MAX else None
    if engine is None:
        raise Http404
    return engine


def engine_detail(request: ApiRequest, pk: int) -> HttpResponse:
    return JsonResponse({"data": engine_to_api(_own_engine(request, pk), team=request.team)})


@sensitive_variables()
def engine_change(request: ApiRequest, pk: int) -> HttpResponse:
    engine = _own_engine(request, pk)
    body: EngineUpdate = read_body(request)
    engine = engine_update(team=request.team, engine=engine, request=body)
    return JsonResponse({"data": engine_to_api(engine, team=request.team)})


def engine_remove(request: ApiRequest, pk: int) -> HttpResponse:
    engine_delete(team=request.team, engine=_own_engine(request, pk))
    return JsonResponse({"data": {"id": pk}})
