"""The OpenAPI 3.1 document of /v1/: paths from the endpoint registry, components from the contract models."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from generator.api.registry import Answer, Endpoint, Header
from generator.contract.base import ContractJsonSchema
from generator.contract.errors import Error
from generator.models import PUBLIC_ID_MAX

REF = "#/components/schemas/{model}"
TITLE = "Image-to-Video API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Wire-compatible with Claid.ai's Image-to-Video API, plus listing, cancel, idempotency, account and "
    "storages. Authenticate with `Authorization: Bearer <key>`. Every error has the envelope of the Error "
    "schema (429 nests it under `detail`); a wrong method is a 405 (code 1005), an unknown /v1/ path a 404 "
    "(code 1004)."
)


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _headers(headers: Iterable[Header]) -> dict:
    return {header.name: {"description": header.description, "schema": header.schema} for header in headers}


def _answer(answer: Answer) -> dict:
    schema = answer.schema if answer.schema is not None else _ref(answer.model or Error)
    documented: dict = {"description": answer.description, "content": {answer.media_type: {"schema": schema}}}
    if answer.headers:
        documented["headers"] = _headers(answer.headers)
    return documented


def _parameters(endpoint: Endpoint) -> list[dict]:
    parameters: list[dict] = []
    if "{id}" in endpoint.path:
        parameters.append(
            {
                "name": "id",
                "in": "path",
                "required": True,
                "description": endpoint.id_description,
                "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": PUBLIC_ID_MAX},
            }
        )
    for header in endpoint.request_headers:
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": False,
                "description": header.description,
                "schema": header.schema,
            }
        )
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(schema_generator=ContractJsonSchema)
        for name, prop in schema["properties"].items():
            description = prop.pop("description", "")
            parameter = {"name": name, "in": "query", "required": name in schema.get("required", ()), "schema": prop}
            if description:
                parameter["description"] = description
            parameters.append(parameter)
    return parameters


def _operation(endpoint: Endpoint) -> dict:
    operation: dict = {"operationId": endpoint.operation_id, "summary": endpoint.summary, "tags": [endpoint.tag]}
    if endpoint.description:
        operation["description"] = endpoint.description
    if parameters := _parameters(endpoint):
        operation["parameters"] = parameters
    if endpoint.body is not None:
        content: dict = {"schema": _ref(endpoint.body)}
        if endpoint.example is not None:
            content["example"] = endpoint.example
        operation["requestBody"] = {"required": True, "content": {"application/json": content}}
    operation["responses"] = {str(answer.status): _answer(answer) for answer in endpoint.answers}
    if endpoint.scope == "public":
        operation["security"] = []
    return operation


def _components(endpoints: Iterable[Endpoint]) -> dict:
    models: list[type[BaseModel]] = [Error]
    for endpoint in endpoints:
        if endpoint.body is not None:
            models.append(endpoint.body)
        models += [answer.model for answer in endpoint.answers if answer.model is not None]
    unique = list(dict.fromkeys(models))
    _, schema = models_json_schema(
        [(model, "validation") for model in unique], ref_template=REF, schema_generator=ContractJsonSchema
    )
    return dict(sorted(schema.get("$defs", {}).items()))


def openapi_document(endpoints: Iterable[Endpoint], *, server_url: str = "") -> dict:
    """Return the OpenAPI document for these endpoints; `server_url` is the base the client reached us on."""
    endpoints = tuple(endpoints)
    paths: dict[str, dict] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": server_url or "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": tag} for tag in dict.fromkeys(endpoint.tag for endpoint in endpoints)],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key of the team."}
            },
            "schemas": _components(endpoints),
        },
    }
