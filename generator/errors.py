"""One family of user-safe errors, raised by services and mapped to responses by views and the API."""

from __future__ import annotations

from dataclasses import dataclass


class GeneratorError(Exception):
    """Base error; its message is safe to show to the user."""

    status = 400
    code = "1000"
    type = "general"

    def __init__(self, message: str, *, details: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationFailed(GeneratorError):
    status, code, type = 422, "9000", "validation"


class NotFound(GeneratorError):
    status, code, type = 404, "1004", "general"


class Forbidden(GeneratorError):
    status, code, type = 403, "112", "auth"


class Conflict(GeneratorError):
    status, code, type = 409, "1009", "general"


class InsufficientCredits(GeneratorError):
    """Not enough credits, or the member's monthly cap; the figures let the dashboard say it in words."""

    status, code, type = 402, "3000", "billing"

    def __init__(
        self,
        message: str,
        *,
        cost: int | None = None,
        balance: int | None = None,
        spent: int | None = None,
        cap: int | None = None,
    ) -> None:
        super().__init__(message)
        self.cost, self.balance, self.spent, self.cap = cost, balance, spent, cap


@dataclass(frozen=True)
class RateLimitStatus:
    """State of the two sliding windows for one team at one moment (docs/credits.md, "Rate limits")."""

    per_second: int
    per_minute: int
    limit: int  # limit of the window nearest exhaustion
    remaining: int  # smaller remaining count of the two windows (-1 on a 429)
    reset_s: int  # whole seconds until that window admits one more

    def headers(self, *, refused: bool = False) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": f"{self.limit}, {self.per_minute};w=60, {self.per_second};w=1",
            "RateLimit-Remaining": str(-1 if refused else self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if refused:
            headers["Retry-After"] = str(max(1, self.reset_s))
        return headers


class RateLimited(GeneratorError):
    status, code, type = 429, "2001", "general"

    def __init__(self, message: str, *, rate: RateLimitStatus) -> None:
        super().__init__(message)
        self.rate = rate


class JobFailed(GeneratorError):
    """A job cannot complete; the message becomes the job's error reason."""


# Refusals only the HTTP layer makes (a service never sees a request).


class MalformedBody(GeneratorError):
    """The request body is not JSON, not a JSON object, or too large (the base kind's 400 / 1000)."""


class Unauthorized(GeneratorError):
    status, code, type = 401, "111", "auth"


class MethodNotAllowed(GeneratorError):
    status, code = 405, "1005"


class InternalError(GeneratorError):
    """A bug: the client gets the envelope, the log gets the traceback."""

    status = 500


def error_kinds() -> list[type[GeneratorError]]:
    """Every kind of error, GeneratorError first: their codes and types are all the API answers with."""
    kinds: list[type[GeneratorError]] = [GeneratorError]
    for kind in kinds:
        kinds.extend(sub for sub in kind.__subclasses__() if sub not in kinds)
    return kinds
