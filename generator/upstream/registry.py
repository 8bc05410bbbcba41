"""One registry from an engine type to its provider; `builtin` is the built-in motion engine's entry.

A fourth provider is one module implementing base.Provider and one row in _PROVIDERS.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from generator.upstream.base import Capabilities, Provider

BUILTIN = "builtin"
# The built-in engine runs in this server's worker (services/worker.py), so it has no provider.
BUILTIN_CAPABILITIES = Capabilities(durations=(5, 10), aspect_ratios=None)
_PROVIDERS: dict[str, str] = {
    "claid": "generator.upstream.claid.ClaidProvider",
    "fal": "generator.upstream.fal.FalProvider",
    "replicate": "generator.upstream.replicate.ReplicateProvider",
}


def supported_engine_types() -> list[str]:
    """The connection types this build can run."""
    return list(_PROVIDERS)


def get_provider(type: str) -> Provider:
    """Return the provider of a connection type; KeyError when this build has none."""
    return import_string(_PROVIDERS[type])()
