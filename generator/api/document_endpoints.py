"""The OpenAPI document, the docs page that renders it, and the envelope for unknown /v1/ paths."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from generator.api.errors import error_from_exception, method_not_allowed
from generator.api.openapi import openapi_document
from generator.api.registry import registered
from generator.errors import NotFound


def _document(request: HttpRequest) -> dict:
    return openapi_document(registered(), server_url=request.build_absolute_uri("/")[:-1])


def openapi(request: HttpRequest) -> HttpResponse:
    """GET /v1/openapi.json: the OpenAPI document (no key needed)."""
    return JsonResponse(_document(request))


def _type_label(spec: dict) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    for union in ("oneOf", "anyOf"):
        if union in spec:
            return " | ".join(_type_label(option) for option in spec[union])
    label = spec.get("type", "any")
    label = " or ".join(label) if isinstance(label, list) else label
    if "enum" in spec:
        label += " (" + ", ".join(str(v) for v in spec["enum"]) + ")"
    if label == "array" and "items" in spec:
        label = f"array of {_type_label(spec['items'])}"
    return label


@csrf_exempt
def docs(request: HttpRequest) -> HttpResponse:
    """Render the OpenAPI document as a page (no script, no CDN)."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(request, ("GET", "HEAD"))
    document = _document(request)
    operations = [
        {
            "method": method.upper(),
            "path": path,
            "summary": operation.get("summary", ""),
            "description": operation.get("description", ""),
            "auth": operation.get("security", document["security"]) != [],
            "responses": sorted(operation["responses"].items()),
            "request": (
                next(iter(operation["requestBody"]["content"].values()))["schema"].get("$ref", "").rsplit("/", 1)[-1]
                if "requestBody" in operation
                else ""
            ),
        }
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "patch", "delete", "put"}
    ]
    schemas = [
        {
            "name": name,
            "description": schema.get("description", ""),
            "fields": [
                (field, field in schema.get("required", []), _type_label(spec), spec.get("description", ""))
                for field, spec in schema.get("properties", {}).items()
            ],
        }
        for name, schema in sorted(document["components"]["schemas"].items())
    ]
    context = {
        "document": document,
        "operations": operations,
        "schemas": schemas,
        "base_url": request.build_absolute_uri("/")[:-1],
    }
    return render(request, "api/docs.html", context)


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Answer unknown /v1/ paths with the error envelope."""
    return error_from_exception(NotFound(f"no such endpoint: {request.path[:200]}"))
