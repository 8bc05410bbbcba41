"""The storages API (SPEC 2.5, 10): /v1/storage/storage-types, /storages, /storages/{id}."""

from __future__ import annotations

from django.http import Http404, JsonResponse
from django.views.decorators.debug import sensitive_variables

from generator.api.auth import api_endpoint
from generator.api.errors import parse_json_object
from generator.errors import ValidationFailed
from generator.selectors import storage_get, storage_list
from generator.services.storage_connections import (
    storage_create,
    storage_delete,
    storage_to_api,
    storage_update,
)
from generator.storage.registry import supported_types


def _only_keys(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationFailed(f"unknown field: {unknown[0]}", details={key: ["unknown field"] for key in unknown})


@api_endpoint(scope="storage", methods=("GET",))
def storage_types(request):
    return JsonResponse({"data": supported_types()})


@api_endpoint(scope="storage", methods=("GET", "POST"))
@sensitive_variables()
def storage_collection(request):
    if request.method == "GET":
        return JsonResponse({"data": [storage_to_api(s) for s in storage_list(team=request.team)]})
    body = parse_json_object(request)
    _only_keys(body, {"name", "type", "parameters"})
    missing = [key for key in ("name", "type") if key not in body]
    if missing:
        raise ValidationFailed(f"{missing[0]}: is required", details={key: ["is required"] for key in missing})
    user = getattr(request.api_key, "created_by", None)
    storage = storage_create(
        team=request.team,
        user=user,
        name=body["name"],
        type=body["type"] if isinstance(body["type"], str) else "",
        parameters=body.get("parameters", {}),
    )
    return JsonResponse({"data": storage_to_api(storage)}, status=201)


@api_endpoint(scope="storage", methods=("GET", "PATCH", "DELETE"))
@sensitive_variables()
def storage_item(request, pk: int):
    storage = storage_get(team=request.team, pk=pk)
    if storage is None:
        raise Http404
    if request.method == "GET":
        return JsonResponse({"data": storage_to_api(storage)})
    if request.method == "DELETE":
        storage_delete(team=request.team, storage=storage)
        return JsonResponse({"data": {"id": pk}})
    body = parse_json_object(request)
    _only_keys(body, {"name", "type", "parameters"})
    if "type" in body and body["type"] != storage.type:
        raise ValidationFailed("type: cannot be changed", details={"type": ["cannot be changed; create a new storage"]})
    if "name" in body and body["name"] is None:
        raise ValidationFailed("name: must not be null", details={"name": ["must not be null"]})
    if "parameters" in body and body["parameters"] is None:
        raise ValidationFailed("parameters: must be an object", details={"parameters": ["must be an object"]})
    storage = storage_update(
        team=request.team, storage=storage, name=body.get("name"), parameters=body.get("parameters")
    )
    return JsonResponse({"data": storage_to_api(storage)})
