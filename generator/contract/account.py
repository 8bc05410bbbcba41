"""GET /v1/account: the team's balance, limits and this month's usage."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from generator.contract.base import ResponseModel
from generator.contract.generate import Timestamp


class RateLimits(ResponseModel):
    per_second: Annotated[int, Field(ge=1)]
    per_minute: Annotated[int, Field(ge=1)]


class Usage(ResponseModel):
    credits: Annotated[int, Field(description="Held minus refunded since `since`.")]
    generations: Annotated[
        int,
        Field(ge=0, description="Jobs charged since `since` and not refunded (ERROR and CANCELLED are not counted)."),
    ]
    since: Annotated[Timestamp, Field(description="The start of this month in the server's TIME_ZONE.")]


class Account(ResponseModel):
    """The team's balance, rate limits and this month's usage."""

    team: str
    balance: Annotated[int, Field(ge=0)]
    rate_limits: RateLimits
    usage_this_month: Usage
