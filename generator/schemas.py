"""The normalised generate request shared by the API and the dashboard form."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GenerateRequest:
    """A validated request; `options` is normalised (defaults filled in, duration an int)."""

    input: str
    options: dict = field(default_factory=dict)
    output: str | None = None

    @property
    def duration(self) -> int:
        return int(self.options.get("duration", 5))

    def echo(self) -> dict:
        """Return the body as the API echoes it: `output` only when given."""
        body: dict = {"input": self.input}
        if self.output is not None:
            body["output"] = self.output
        body["options"] = dict(self.options)
        return body
