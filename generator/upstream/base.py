"""The interface every engine provider implements, and what it raises.

A provider speaks one upstream's HTTP API through the safe client (generator/fetch.py), so
its base URL passes the same address policy as every outbound request. It holds no state:
everything it needs comes in a Connection, everything it learns goes out in return values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from generator.upstream.templates import ModelTemplate, inputs_problems, template_for


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
    # What the jobs page shows while it runs; every key optional: "state" (the upstream's own word),
    # "queue_position" (int), "percent" (0..100), "started" (bool: the model is running).
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    """What a connection can honour: allowed durations and shapes (None: the provider decides nothing)."""

    durations: tuple[int, ...] = (5, 10)
    aspect_ratios: tuple[str, ...] | None = None
    # The upstream's submit limits per connection: (per second, per minute); None: none known.
    rate: tuple[int, int] | None = None
    # Largest image the upstream takes inline as a data: URI; 0: it needs a URL it can fetch.
    data_uri_max_bytes: int = 0
    # The upstream can call a webhook when the job ends (submit's webhook_url), signed so
    # verify_webhook can check it.
    webhooks: bool = False
    # The upstream takes Claid's automatic prompt ({"generate": true}) itself; otherwise the worker
    # writes the prompt from the photo as builtin does and sends its text.
    auto_prompt: bool = False


class Provider(Protocol):
    # The provider's shipped input templates by model name (templates.py); None: it takes no
    # input template (Claid speaks one fixed request). Where not None, a connection gives a
    # shipped model or its own parameters.inputs (services/engine_connections.py checks it).
    templates: Mapping[str, ModelTemplate] | None

    def capabilities(self, connection: Connection) -> Capabilities: ...

    def test(self, connection: Connection) -> None:
        """One cheap authenticated call; raise UpstreamError with the upstream's reason if it fails."""

    def submit(
        self, connection: Connection, *, image_url: str, options: dict, idempotency_key: str = "", webhook_url: str = ""
    ) -> Submitted:
        """Start one upstream job. `image_url` is an http(s) URL or, within data_uri_max_bytes, a data: URI.

        `webhook_url` (only when capabilities().webhooks and this server has a public URL) is
        where the upstream should call when the job ends; a webhook only makes the next poll sooner.
        """

    def poll(self, connection: Connection, submitted: Submitted) -> Polled: ...

    def cancel(self, connection: Connection, submitted: Submitted) -> None: ...

    def verify_webhook(self, connection: Connection, *, headers: Mapping[str, str], body: bytes) -> bool:
        """True only when the upstream's signature over `body` is valid and fresh (False for no webhooks)."""


def connection_template(connection: Connection, shipped: Mapping[str, ModelTemplate]) -> ModelTemplate:
    """The template a templated provider's connection renders; an UpstreamError if it has none (saved before)."""
    try:
        return template_for(model=connection.model, inputs=connection.inputs, shipped=shipped)
    except KeyError:
        raise UpstreamError(inputs_problems(model=connection.model, inputs=None, shipped=shipped)[0]) from None
