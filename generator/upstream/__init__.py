"""Upstream engines: where a video is made when it is not the built-in engine (docs/engines.md).

One small interface (base.Provider: submit, poll, cancel, test) and a registry from a
connection type to its provider; `builtin` is the registry's entry for the built-in engine.
"""
