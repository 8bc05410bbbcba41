"""What every contract model shares: strict validation, our error messages, and the JSON schema style.

A request model validates a JSON body and, when it refuses it, raises ValidationFailed whose
`details` name each bad field by its dotted path (`options.duration`), with a message a person
understands. Pydantic's own error types are translated here; a rule of our own raises `refuse()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError

from generator.errors import ValidationFailed

REQUIRED = "is required"
UNKNOWN = "unknown field"
# Union members are tagged "~name" so that their tag can be dropped from an error's path.
TAG_PREFIX = "~"
_CUSTOM = "generator"
_SURROGATE = re.compile("[\ud800-\udfff]")
_DETAIL_KEY_MAX_CHARS = 100

Details = dict[str, list[str]]


def refuse(message: str, *, details: Details | None = None) -> PydanticCustomError:
    """Return the error a rule raises: `message` for this field, or `details` keyed relative to it."""
    return PydanticCustomError(_CUSTOM, "{message}", {"message": message, "details": details or {"": [message]}})


def type_name(value: Any) -> str:
    """Name a JSON value's type the way our messages do ("a string", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def unstorable(value: str) -> str | None:
    """Return why a string cannot be stored as JSON text everywhere (PostgreSQL jsonb refuses these)."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if _SURROGATE.search(value):
        return "must not contain unpaired UTF-16 surrogates"
    return None


def _message(error: ErrorDetails) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return REQUIRED
    if kind == "extra_forbidden":
        return UNKNOWN
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return f"must be {'a JSON object' if not error['loc'] else 'an object'}, not {type_name(value)}"
    if kind == "string_type":
        return f"must be a string, not {type_name(value)}"
    if kind in {"int_type", "int_from_float"}:
        return f"must be a whole number, not {type_name(value)}"
    if kind == "bool_type":
        return f"must be true or false, not {type_name(value)}"
    if kind in {"literal_error", "enum"}:
        return f"must be one of: {ctx.get('expected', '')}".replace("'", "")
    message = str(error.get("msg", "is not valid"))
    return message[:1].lower() + message[1:]


def _path(loc: tuple) -> list[str]:
    return [str(part)[:_DETAIL_KEY_MAX_CHARS] for part in loc if not str(part).startswith(TAG_PREFIX)]


def details_from(exc: ValidationError) -> Details:
    """Translate pydantic's errors into our details: dotted path -> messages, unknown keys first at each level."""
    entries: list[tuple[list[str], bool, str]] = []
    for error in exc.errors(include_url=False):
        path = _path(error["loc"])
        if error["type"] == _CUSTOM:
            for sub, messages in error["ctx"]["details"].items():
                for message in messages:
                    entries.append(([*path, *sub.split(".")] if sub else path, False, message))
        else:
            entries.append((path, error["type"] == "extra_forbidden", _message(error)))
    # Keep pydantic's field order, but name unknown keys before the fields of the same object.
    first_seen: dict[tuple[str, ...], int] = {}
    for index, (path, _, _) in enumerate(entries):
        for depth in range(1, len(path) + 1):
            first_seen.setdefault(tuple(path[:depth]), index)

    def order(entry: tuple[list[str], bool, str]) -> list[tuple[int, int]]:
        path, unknown, _ = entry
        return [
            (0 if unknown and depth == len(path) else 1, first_seen[tuple(path[:depth])])
            for depth in range(1, len(path) + 1)
        ]

    details: Details = {}
    for path, _, message in sorted(entries, key=order):
        details.setdefault(".".join(path) or "body", []).append(message)
    return details


def validation_failed(details: Details) -> ValidationFailed:
    """Return the 422 error naming every field in `details`; its message names the first."""
    first, messages = next(iter(details.items()))
    return ValidationFailed(f"{first}: {messages[0]}", details=details)


class RequestModel(BaseModel):
    """A request body (or part of one): strict types, unknown keys refused, our messages.

    Hooks for rules pydantic cannot state:
    - NULL_MEANS_ABSENT: a null value counts as the key not being sent (then a default applies,
      or a required field "is required"); True for every field, or a tuple of field names.
    - cross_check(data): rules across keys, run first on everything sent; it returns the data to
      validate and faults of its own, reported together with the field errors.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    NULL_MEANS_ABSENT: ClassVar[bool | tuple[str, ...]] = False
    # The message for an unknown key; None reports all unknown keys of this object in one message.
    UNKNOWN_KEY_MESSAGE: ClassVar[str | None] = UNKNOWN

    @classmethod
    def parse(cls, data: Any) -> Self:
        """Validate a decoded JSON value; raise ValidationFailed naming every bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise validation_failed(details_from(exc)) from None

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        return data, {}

    @model_validator(mode="wrap")
    @classmethod
    def _check(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        data, crossed = cls.cross_check(dict(data))
        faults: Details = {}
        unknown = [key for key in data if key not in cls.model_fields]
        if unknown and cls.UNKNOWN_KEY_MESSAGE is not None:
            for key in unknown:
                faults[str(key)[:_DETAIL_KEY_MAX_CHARS]] = [cls.UNKNOWN_KEY_MESSAGE]
        elif unknown:
            faults[""] = [f"unknown keys: {', '.join(sorted(str(key) for key in unknown))}"]
        for key, messages in crossed.items():
            faults.setdefault(key, []).extend(messages)
        known = {key: value for key, value in data.items() if key in cls.model_fields}
        if cls.NULL_MEANS_ABSENT:
            flag = cls.NULL_MEANS_ABSENT
            nullable: Collection[str] = cls.model_fields if flag is True else (flag or ())
            known = {key: value for key, value in known.items() if value is not None or key not in nullable}
        if not faults:
            return handler(known)
        try:
            handler(known)
        except ValidationError as exc:
            for key, messages in details_from(exc).items():
                faults.setdefault("" if key == "body" else key, []).extend(messages)
        raise refuse(next(iter(faults.values()))[0], details=faults)


class ResponseModel(BaseModel):
    """A response body as the API sends it (documentation and typed clients; not used to validate)."""

    model_config = ConfigDict(extra="forbid")


class ContractJsonSchema(GenerateJsonSchema):
    """JSON schema in the document's style: no titles, and an optional field is simply absent, never null."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: Any) -> Any:
        json_schema = super().model_schema(schema)
        json_schema.pop("title", None)
        required = set(json_schema.get("required", ()))
        for name, prop in json_schema.get("properties", {}).items():
            if name in required or prop.get("default", 0) is not None:
                continue
            prop.pop("default")
            options = [option for option in prop.pop("anyOf", []) if option != {"type": "null"}]
            if len(options) == 1:
                prop.update(options[0])
            elif options:
                prop["anyOf"] = options
        return json_schema
