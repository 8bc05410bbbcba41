"""The /v1/storage handlers: storage types, and connecting, reading, changing and disconnecting storages."""

from __future__ import annotations

from typing import cast

from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.debug import sensitive_variables

from generator.api.registry import ApiRequest, read_body
from generator.contract.storages import StorageCreate, StorageUpdate
from generator.errors import ValidationFailed
from generator.models import Storage
from generator.selectors import storage_get, storage_list
from generator.services.storage_connections import storage_connect, storage_delete, storage_to_api, storage_update
from generator.storage.registry import supported_types


def storage_types(request: ApiRequest) -> HttpResponse:
    return JsonResponse({"data": supported_types()})


def storage_index(request: ApiRequest) -> HttpResponse:
    return JsonResponse({"data": [storage_to_api(s) for s in storage_list(team=request.team)]})


@sensitive_variables()
def storage_add(request: ApiRequest) -> HttpResponse:
    body: StorageCreate = read_body(request)
    storage = storage_connect(team=request.team, user=getattr(request.api_key, "created_by", None), request=body)
    return JsonResponse({"data": storage_to_api(storage)}, status=201)


def _own_storage(request: ApiRequest, pk: int) -> Storage:
    storage = storage_get(team=request.team, pk=pk)
    if storage is None:
        raise Http404
    return storage


def storage_detail(request: ApiRequest, pk: int) -> HttpResponse:
    return JsonResponse({"data": storage_to_api(_own_storage(request, pk))})


def storage_remove(request: ApiRequest, pk: int) -> HttpResponse:
    storage_delete(team=request.team, storage=_own_storage(request, pk))
    return JsonResponse({"data": {"id": pk}})


@sensitive_variables()
def storage_change(request: ApiRequest, pk: int) -> HttpResponse:
    storage = _own_storage(request, pk)
    body: StorageUpdate = read_body(request)
    if "type" in body.model_fields_set and body.type != storage.type:
        raise ValidationFailed("type: cannot be changed", details={"type": ["cannot be changed; create a new storage"]})
    storage = storage_update(
        team=request.team,
        storage=storage,
        name=body.name if "name" in body.model_fields_set else None,
        # Not validated here (SkipValidation): the service checks them merged with the stored ones.
        parameters=cast(dict, body.parameters) if "parameters" in body.model_fields_set else None,
    )
    return JsonResponse({"data": storage_to_api(storage)})
