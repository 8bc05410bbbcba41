"""The error envelope every non-2xx answer carries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from generator.contract.base import ResponseModel
from generator.errors import error_kinds

ERROR_CODES = tuple(dict.fromkeys(kind.code for kind in error_kinds()))
ERROR_TYPES = tuple(dict.fromkeys(kind.type for kind in error_kinds()))


class Error(ResponseModel):
    """Every non-2xx answer except 429, which nests this object under `detail`."""

    error_code: Literal[ERROR_CODES]  # type: ignore[valid-type]
    error_type: Literal[ERROR_TYPES]  # type: ignore[valid-type]
    error_message: str
    error_details: Annotated[
        dict[str, list[str]],
        Field(description="Messages keyed by dotted field name (`options.duration`); `{}` when no field is at fault."),
    ]


class RateLimited(ResponseModel):
    """429: the error object nested under `detail`, as the reference API does (code 2001)."""

    detail: Error
