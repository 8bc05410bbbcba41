"""The interface every engine provider implements, and what it raises.

A provider speaks one upstream's HTTP API through the safe client (generator/fetch.py), so
its base URL passes the same address policy as every outbound request. It holds no state:
everything it needs comes in a Connection, everything it learns goes out in return values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class UpstreamError(Exception):
    """The upstream refused or failed; `message` is safe to show (secrets are scrubbed by the caller).

    `retry_after` is set for a 429 (wait and try again); `transient` for a 5xx, a timeout or a
    connection error (retried with back-off); otherwise the refusal is final (a 4xx).
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, transient: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.transient = transient


@dataclass(frozen=True)
class Connection:
    """A connection's values as a provider sees them."""

    type: str
    api_key: str
    model: str = ""
    base_url: str = ""
    inputs: dict[str, Any] | None = None


@dataclass
class Submitted:
    upstream_id: str
    # Provider-specific addresses to remember (status_url, cancel_url, ...), stored with the job.
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Polled:
    """One look at an upstream job: done with a result URL, failed with a reason, or still running."""

    status: str  # "running", "done" or "failed"
    result_url: str = ""
    error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    """What a connection can honour: allowed durations and shapes (None: the provider decides nothing)."""

    durations: tuple[int, ...] = (5, 10)
    aspect_ratios: tuple[str, ...] | None = None
    # The upstream's submit limits per connection: (per second, per minute); None: none known.
    rate: tuple[int, int] | None = None


class Provider(Protocol):
    def capabilities(self, connection: Connection) -> Capabilities: ...

    def test(self, connection: Connection) -> None:
        """One cheap authenticated call; raise UpstreamError with the upstream's reason if it fails."""

    def submit(
        self, connection: Connection, *, image_url: str, options: dict, idempotency_key: str = ""
    ) -> Submitted: ...

    def poll(self, connection: Connection, submitted: Submitted) -> Polled: ...

    def cancel(self, connection: Connection, submitted: Submitted) -> None: ...
