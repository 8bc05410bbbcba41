"""Input templates: a connection's `parameters.inputs` filled with one job's values (docs/engines.md).

A template is the JSON body a model takes, with placeholders where the job's values go:
`{prompt}`, `{negative_prompt}`, `{image_url}`, `{duration}`, `{guidance_scale}`,
`{aspect_ratio}`. A string that is exactly one placeholder becomes the value with its own JSON
type (`"{duration}"` -> 5, not "5"); `"{duration:text}"` is the value as a string ("5", for
models whose schema takes an enum of strings); a placeholder inside longer text is written into
the text. A prompt given as an object (`{"text": ...}`) is its text; an automatic prompt
(`{"generate": true}`) arrives as the text the worker wrote for the photo (services/worker.py),
and only without one is `{prompt}` absent.
A key whose whole value is a placeholder the job has no value for (no negative prompt, the
photo's own shape) is left out, so the model applies its own default. Each provider ships
templates for well-known models (`ModelTemplate`); a connection's own `inputs` replaces them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDERS = ("prompt", "negative_prompt", "image_url", "duration", "guidance_scale", "aspect_ratio")
FORMS = ("text",)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)(?::([a-z_]+))?\}")
_MISSING = object()


@dataclass(frozen=True)
class ModelTemplate:
    """A shipped model: its input template, the durations it makes and the shapes it takes (None: photo's only)."""

    title: str
    inputs: dict[str, Any]
    durations: tuple[int, ...]
    aspect_ratios: tuple[str, ...] | None = None
    # Inputs added for one duration, for a model whose length is not a duration input
    # (e.g. frames: {5: {"num_frames": 81}, 10: {"num_frames": 161}}).
    by_duration: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)


# The durations a connection with its own template for a model we ship nothing for may ask.
CUSTOM_DURATIONS = (5, 10)
# The fixed shapes a job may ask (generator/engine/sizing.py); "source" is the photo's own.
FIXED_SHAPES = ("16:9", "9:16", "1:1", "4:5")


def inputs_problems(*, model: str, inputs: Any, shipped: Mapping[str, ModelTemplate]) -> list[str]:
    """Why a connection's parameters give no usable template: its own `inputs` is faulty, or it has none
    and no template ships for its model. One rule for every provider with templates (fal, Replicate)."""
    if inputs is not None:
        return template_problems(inputs)
    if model in shipped:
        return []
    known = ", ".join(sorted(shipped)) or "none"
    return [f"no template ships for the model {model!r}: give parameters.inputs (shipped: {known})"]


def template_for(*, model: str, inputs: dict[str, Any] | None, shipped: Mapping[str, ModelTemplate]) -> ModelTemplate:
    """The template a connection renders: its own `inputs`, else its model's shipped one.

    A connection's own inputs keep the shipped model's durations, shapes and per-duration inputs (so
    the durations it offers are still made); for a model we ship
    nothing for they allow CUSTOM_DURATIONS, and the fixed shapes only if they place {aspect_ratio}.
    """
    known = shipped.get(model)
    if inputs is None:
        if known is None:
            raise KeyError(model)
        return known
    if known is not None:
        return ModelTemplate(
            title=known.title,
            inputs=inputs,
            durations=known.durations,
            aspect_ratios=known.aspect_ratios,
            by_duration=known.by_duration,
        )
    places_shape = any(name == "aspect_ratio" for name, _form in _placeholders_in(inputs))
    return ModelTemplate(
        title=model, inputs=inputs, durations=CUSTOM_DURATIONS, aspect_ratios=FIXED_SHAPES if places_shape else None
    )


def shapes_of(template: ModelTemplate) -> tuple[str, ...]:
    """Capabilities.aspect_ratios of a template: the photo's own shape, plus the fixed ones it takes."""
    return ("source", *(template.aspect_ratios or ()))


def template_problems(template: Any) -> list[str]:
    """What is wrong with a template: unknown placeholders, or no {image_url} at all."""
    used = _placeholders_in(template)
    found = {name for name, _form in used}
    problems = [f"unknown placeholder {{{name}}}" for name in sorted(found - set(PLACEHOLDERS))]
    forms = sorted({f"{{{name}:{form}}}" for name, form in used if form and form not in FORMS})
    problems += [f"unknown form {spelled} (only :text is known)" for spelled in forms]
    if "image_url" not in found:
        problems.append("the template must place {image_url}")
    return problems


def _placeholders_in(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return _PLACEHOLDER.findall(value)
    if isinstance(value, dict):
        return [name for item in value.values() for name in _placeholders_in(item)]
    if isinstance(value, list):
        return [name for item in value for name in _placeholders_in(item)]
    return []


def job_values(*, image_url: str, options: dict) -> dict[str, Any]:
    """The placeholder values of one job; a value the job does not set is absent."""
    values: dict[str, Any] = {"image_url": image_url}
    for key in ("prompt", "negative_prompt", "guidance_scale"):
        value = options.get(key)
        if isinstance(value, dict):  # a prompt object: its text, or none for an automatic prompt
            value = value.get("text")
        if value not in (None, ""):
            values[key] = value
    values["duration"] = int(options.get("duration", 5))
    shape = options.get("aspect_ratio")
    if shape and shape != "source":
        values["aspect_ratio"] = shape
    return values


def render_template(template: ModelTemplate, values: dict[str, Any]) -> dict[str, Any]:
    """The body a model receives: its inputs rendered, plus those its template adds for the job's duration."""
    return {**render_inputs(template.inputs, values), **template.by_duration.get(values.get("duration", 0), {})}


def render_inputs(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The template with `values` put in; keys whose value is a missing placeholder are dropped."""
    rendered = _render(template, values)
    return rendered if isinstance(rendered, dict) else {}


def _render(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            found = values.get(whole.group(1), _MISSING)
            return str(found) if whole.group(2) == "text" and found is not _MISSING else found
        return _PLACEHOLDER.sub(lambda match: str(values.get(match.group(1), "")), value)
    if isinstance(value, dict):
        items = ((key, _render(item, values)) for key, item in value.items())
        return {key: item for key, item in items if item is not _MISSING}
    if isinstance(value, list):
        return [item for item in (_render(item, values) for item in value) if item is not _MISSING]
    return value
