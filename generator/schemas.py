"""The normalised generate request shared by the API and the dashboard form, and its validator."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from generator.errors import ValidationFailed
from generator.netpolicy import UrlRejected, check_url_syntax
from generator.storage.uris import KeyRejected, parse_storage_uri

INPUT_MAX_CHARS = 512
PROMPT_MIN_CHARS, PROMPT_MAX_CHARS = 3, 5000
GUIDELINES_MIN_CHARS, GUIDELINES_MAX_CHARS = 3, 1000
DURATIONS = (5, 10)
DEFAULT_DURATION = 5
DEFAULT_GUIDANCE_SCALE = 0.5
TOP_LEVEL_KEYS = ("input", "output", "options")
OPTION_KEYS = ("prompt", "negative_prompt", "duration", "guidance_scale")
PROMPT_KEYS = ("text", "generate", "guidelines")
REQUIRED = "is required"
UNKNOWN = "unknown field"
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class GenerateRequest:
    """A validated request; `options` is normalised (defaults filled in, duration an int)."""

    input: str
    options: dict = field(default_factory=dict)
    output: str | None = None

    @property
    def duration(self) -> int:
        return int(self.options.get("duration", DEFAULT_DURATION))

    def echo(self) -> dict:
        """Return the body as the API echoes it: `output` only when given."""
        body: dict = {"input": self.input}
        if self.output is not None:
            body["output"] = self.output
        body["options"] = dict(self.options)
        return body


class _Errors:
    """Collect every field's messages so one answer names all of them."""

    def __init__(self) -> None:
        self.details: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.details.setdefault(name, []).append(message)

    def unknown_keys(self, value: dict, allowed: tuple[str, ...], *, prefix: str = "") -> None:
        for key in value:
            if key not in allowed:
                # Keys of any JSON shape end up here; keep the detail key printable and short.
                self.add(f"{prefix}{str(key)[:100]}", UNKNOWN)

    def raise_if_any(self) -> None:
        if self.details:
            first, messages = next(iter(self.details.items()))
            raise ValidationFailed(f"{first}: {messages[0]}", details=self.details)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _unstorable(value: str) -> str | None:
    """Return why a string cannot be stored as JSON text everywhere (PostgreSQL jsonb refuses these)."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if _SURROGATE.search(value):
        return "must not contain unpaired UTF-16 surrogates"
    return None


def _text(value: Any, *, name: str, low: int, high: int, errors: _Errors) -> str | None:
    if not isinstance(value, str):
        errors.add(name, f"must be a string, not {_type_name(value)}")
        return None
    if problem := _unstorable(value):
        errors.add(name, problem)
        return None
    # Whitespace does not count towards the minimum: "   " says nothing to the engine.
    if len(value.strip()) < low:
        errors.add(name, f"must be at least {low} characters")
        return None
    if len(value) > high:
        errors.add(name, f"must be at most {high} characters (got {len(value)})")
        return None
    return value


def _storage_name_known(name: str, *, team) -> bool:
    from generator.models import Storage

    return team is not None and Storage.objects.filter(team=team, name=name).exists()


def _storage_uri(value: str, *, name: str, team, errors: _Errors, want: str) -> str | None:
    try:
        parsed = parse_storage_uri(value)
    except KeyRejected as exc:
        errors.add(name, str(exc))
        return None
    if want == "input" and parsed.is_folder:
        errors.add(name, "must name an image object, not a folder (it ends in '/')")
        return None
    if want == "output" and not (parsed.key.endswith("/") or parsed.key.endswith(".mp4")):
        errors.add(name, "must end in '/' (a folder) or '.mp4' (an object)")
        return None
    if not _storage_name_known(parsed.name, team=team):
        errors.add(name, f"no storage named {parsed.name!r} in this team")
        return None
    return value


def _input(value: Any, *, team, errors: _Errors) -> str | None:
    if not isinstance(value, str):
        errors.add("input", f"must be a string, not {_type_name(value)}")
        return None
    if not value:
        errors.add("input", "must not be empty")
        return None
    if len(value) > INPUT_MAX_CHARS:
        errors.add("input", f"must be at most {INPUT_MAX_CHARS} characters (got {len(value)})")
        return None
    if problem := _unstorable(value):
        errors.add("input", problem)
        return None
    if value.startswith("storage://"):
        return _storage_uri(value, name="input", team=team, errors=errors, want="input")
    try:
        check_url_syntax(
            value,
            ports=settings.GENERATOR_FETCH_PORTS,
            allow_hosts=settings.GENERATOR_FETCH_ALLOW_HOSTS,
        )
    except UrlRejected as exc:
        errors.add("input", f"{exc} (expected an http(s) URL or storage://<name>/<path>)")
        return None
    return value


def _output(value: Any, *, team, errors: _Errors) -> str | None:
    if not isinstance(value, str):
        errors.add("output", f"must be a string, not {_type_name(value)}")
        return None
    if problem := _unstorable(value):
        errors.add("output", problem)
        return None
    if not value.startswith("storage://"):
        errors.add("output", "must be storage://<name>/<dir>/ or storage://<name>/<path>.mp4")
        return None
    return _storage_uri(value, name="output", team=team, errors=errors, want="output")


def _prompt(value: Any, *, errors: _Errors) -> str | dict | None:
    name = "options.prompt"
    if value is None:
        errors.add(name, REQUIRED)
        return None
    if isinstance(value, str):
        return _text(value, name=name, low=PROMPT_MIN_CHARS, high=PROMPT_MAX_CHARS, errors=errors)
    if not isinstance(value, dict):
        errors.add(name, f"must be a string or an object, not {_type_name(value)}")
        return None
    before = len(errors.details)
    errors.unknown_keys(value, PROMPT_KEYS, prefix=f"{name}.")
    has_text = "text" in value
    generate = value.get("generate")
    if "generate" in value and generate is not True:
        errors.add(f"{name}.generate", "must be true when given (or send a text prompt instead)")
    if has_text and "generate" in value:
        errors.add(name, "give either text or generate: true, not both")
    elif has_text and "guidelines" in value:
        errors.add(f"{name}.guidelines", "guidelines steer an automatic prompt; they cannot go with text")
    elif not has_text and "generate" not in value:
        errors.add(name, "must have text, or generate: true")
    normalised: dict = {}
    if has_text:
        text = _text(value["text"], name=f"{name}.text", low=PROMPT_MIN_CHARS, high=PROMPT_MAX_CHARS, errors=errors)
        normalised["text"] = text
    else:
        normalised["generate"] = True
        if value.get("guidelines") is not None:
            guidelines = _text(
                value["guidelines"],
                name=f"{name}.guidelines",
                low=GUIDELINES_MIN_CHARS,
                high=GUIDELINES_MAX_CHARS,
                errors=errors,
            )
            normalised["guidelines"] = guidelines
    return normalised if len(errors.details) == before else None


def _duration(value: Any, *, errors: _Errors) -> int | None:
    if value is None:
        return DEFAULT_DURATION
    # bool is an int in Python and 5.0 is a float: both are refused, as SPEC 10 says.
    if isinstance(value, int) and not isinstance(value, bool) and value in DURATIONS:
        return value
    if isinstance(value, str) and value in {str(d) for d in DURATIONS}:
        return int(value)
    errors.add("options.duration", 'must be 5 or 10 (a number or the string "5" or "10")')
    return None


def _guidance_scale(value: Any, *, errors: _Errors) -> float | None:
    if value is None:
        return DEFAULT_GUIDANCE_SCALE
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        errors.add("options.guidance_scale", f"must be a number from 0 to 1, not {_type_name(value)}")
        return None
    # Compare before converting: a 5000-digit integer does not fit in a float.
    if not (0 <= value <= 1) or (isinstance(value, float) and not math.isfinite(value)):
        errors.add("options.guidance_scale", "must be between 0 and 1")
        return None
    return float(value)


def parse_generate_request(body: Any, *, team) -> GenerateRequest:
    """Validate a generate body for a team; raise ValidationFailed naming every bad field."""
    errors = _Errors()
    if not isinstance(body, dict):
        errors.add("body", f"must be a JSON object, not {_type_name(body)}")
        errors.raise_if_any()
    errors.unknown_keys(body, TOP_LEVEL_KEYS)

    input_value = None
    if "input" not in body or body["input"] is None:
        errors.add("input", REQUIRED)
    else:
        input_value = _input(body["input"], team=team, errors=errors)

    output = None
    if body.get("output") is not None:
        output = _output(body["output"], team=team, errors=errors)

    options: dict = {}
    raw_options = body.get("options")
    if raw_options is None:
        errors.add("options", REQUIRED)
    elif not isinstance(raw_options, dict):
        errors.add("options", f"must be an object, not {_type_name(raw_options)}")
    else:
        errors.unknown_keys(raw_options, OPTION_KEYS, prefix="options.")
        options["prompt"] = _prompt(raw_options.get("prompt"), errors=errors)
        if raw_options.get("negative_prompt") is not None:
            options["negative_prompt"] = _text(
                raw_options["negative_prompt"],
                name="options.negative_prompt",
                low=PROMPT_MIN_CHARS,
                high=PROMPT_MAX_CHARS,
                errors=errors,
            )
        options["duration"] = _duration(raw_options.get("duration"), errors=errors)
        options["guidance_scale"] = _guidance_scale(raw_options.get("guidance_scale"), errors=errors)

    errors.raise_if_any()
    return GenerateRequest(input=input_value, options=options, output=output)
