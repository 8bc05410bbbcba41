"""The engines API: the bodies that connect or change an engine connection, and the engine it answers with.

Checks that need more than the body stay in services/engine_connections.py: a name already used
in the team, and the live connection test.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from generator import models
from generator.contract.base import Details, RequestModel, ResponseModel, refuse
from generator.contract.generate import Timestamp
from generator.contract.storages import Secret, _endpoint_rule, _name_rule, _object_rule
from generator.storage.uris import NAME_RE
from generator.upstream.registry import BUILTIN, supported_engine_types

ENGINE_TYPES: tuple[str, ...] = tuple(models.EngineConnection.Type.values)
EngineType = Literal[ENGINE_TYPES]  # type: ignore[valid-type]
MODEL_MAX_CHARS = 200
INPUTS_MAX_CHARS = 10_000


def _engine_name_rule(value: Any) -> str:
    value = _name_rule(value)
    if value == BUILTIN:
        raise refuse("'builtin' is the built-in engine's name")
    return value


def _type_rule(value: Any) -> str:
    if value not in supported_engine_types():
        raise refuse(f"must be one of: {', '.join(supported_engine_types())}")
    return value


def _model_rule(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MODEL_MAX_CHARS or not value.isprintable():
        raise refuse(f"must be a model name of 1..{MODEL_MAX_CHARS} characters")
    return value


def _inputs_rule(value: Any) -> dict:
    value = _object_rule(value)
    if len(str(value)) > INPUTS_MAX_CHARS:
        raise refuse("is too large")
    return value


EngineName = Annotated[
    str,
    Field(pattern=NAME_RE.pattern, description="Unique in the team; `builtin` is reserved. Used in options.engine."),
    BeforeValidator(_engine_name_rule),
]


class EngineCredentials(RequestModel):
    """The upstream account's key. Write-only: never returned."""

    api_key: Secret


class EngineParameters(RequestModel):
    UNKNOWN_KEY_MESSAGE = "unknown engine parameter"
    NULL_MEANS_ABSENT = True

    model: Annotated[str, BeforeValidator(_model_rule), Field(description="fal/Replicate: the model's name.")] = None  # type: ignore[assignment]
    base_url: Annotated[
        str,
        BeforeValidator(_endpoint_rule),
        Field(description="Overrides the provider's API address (tests, gateways); passes the address policy."),
    ] = None  # type: ignore[assignment]
    inputs: Annotated[
        dict,
        BeforeValidator(_inputs_rule),
        Field(description="A JSON template of the upstream input with {prompt}, {image_url}, {duration}, ..."),
    ] = None  # type: ignore[assignment]


class EngineCreate(RequestModel):
    """Connect an engine. One cheap authenticated call is made before it is saved."""

    name: EngineName
    type: Annotated[EngineType, BeforeValidator(_type_rule)]
    credentials: EngineCredentials
    parameters: EngineParameters = None  # type: ignore[assignment]

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        return {"parameters": {}, "credentials": None, **data}, {}


class EngineUpdate(RequestModel):
    """Rename a connection, replace its key or its parameters (tested again), or make it the team's default."""

    name: EngineName = None  # type: ignore[assignment]
    credentials: EngineCredentials = None  # type: ignore[assignment]
    parameters: EngineParameters = None  # type: ignore[assignment]
    is_default: Annotated[
        bool,
        Field(
            description="true: the team's default engine (a request without options.engine runs on it); false on "
            "the default: the team falls back to builtin. Owners and admins only."
        ),
    ] = None  # type: ignore[assignment]


class EngineParametersOut(ResponseModel):
    model: str | None = None
    base_url: str | None = None
    inputs: dict | None = None


class Engine(ResponseModel):
    """An engine the team can run on (never its credentials); `builtin` has id null."""

    id: int | None
    name: str
    type: Literal[(BUILTIN, *ENGINE_TYPES)]  # type: ignore[valid-type]
    parameters: EngineParametersOut
    price: Annotated[dict[str, int], Field(description='Credits held per duration: {"5": 35, "10": 70}.')]
    durations: list[int]
    aspect_ratios: Annotated[list[str] | None, Field(description="Shapes it honours; null: all.")]
    is_default: bool
    created_at: Timestamp | None


class EngineList(ResponseModel):
    data: list[Engine]


class EngineDeleted(ResponseModel):
    id: int
