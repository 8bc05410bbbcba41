"""The error envelope every non-2xx answer carries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from generator.contract.base import ResponseModel

ERROR_CODES = ("1000", "111", "112", "3000", "1004", "1005", "1009", "9000", "2001")
ERROR_TYPES = ("general", "auth", "billing", "validation")


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
