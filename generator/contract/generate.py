"""POST /v1/video/generate and the generation it answers with: the request models and the response shapes.

Adding an option (an engine, an aspect ratio, ...): one field on GenerateOptions, typed with a
rule that raises `refuse()`, default None, so a request without it is echoed exactly as before.
The format options (aspect_ratio, resolution, loop, background) are echoed as a group: all four
with their defaults once one is sent, none when none is (docs/formats.md).
Rules that need the database (is `storage://name/...` one of the team's storages?) are not here:
the generations service checks them.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from django.utils.dateparse import parse_datetime
from pydantic import BeforeValidator, Discriminator, Field, Tag

from generator import models
from generator.contract.base import (
    Details,
    RequestModel,
    ResponseModel,
    refuse,
    type_name,
    unstorable,
)
from generator.engine.sizing import ASPECT_RATIOS, RESOLUTIONS, SOURCE
from generator.netpolicy import UrlRejected, check_url_syntax
from generator.storage.uris import KeyRejected, parse_storage_uri

INPUT_MAX_CHARS = 512
PROMPT_MIN_CHARS, PROMPT_MAX_CHARS = 3, 5000
GUIDELINES_MIN_CHARS, GUIDELINES_MAX_CHARS = 3, 1000
DURATIONS = (5, 10)
DEFAULT_DURATION: Literal[5] = 5
DEFAULT_GUIDANCE_SCALE = 0.5
# An output names a folder (a unique file name is made in it) or exactly one MP4 object.
OUTPUT_SUFFIXES = ("/", ".mp4")
STORAGE_SCHEME = "storage://"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$"
GENERATE_TRUE = "must be true when given (or send a text prompt instead)"
SHAPES: tuple[str, ...] = (SOURCE, *ASPECT_RATIOS)
ENGINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$")
BACKGROUNDS = ("auto", "blur", "extend")
BACKGROUND_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
# The options that shape the frame, with the value a request without them gets (docs/formats.md).
FORMAT_DEFAULTS: dict[str, Any] = {
    "aspect_ratio": SOURCE,
    "resolution": RESOLUTIONS[0],
    "loop": False,
    "background": "auto",
}


# --- rules of single fields -------------------------------------------------------------------


def _text_rule(low: int, high: int):
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise refuse(f"must be a string, not {type_name(value)}")
        if problem := unstorable(value):
            raise refuse(problem)
        # Whitespace does not count towards the minimum: "   " says nothing to the engine.
        if len(value.strip()) < low:
            raise refuse(f"must be at least {low} characters")
        if len(value) > high:
            raise refuse(f"must be at most {high} characters (got {len(value)})")
        return value

    return check


def _storage_uri(value: str, *, want: str) -> str:
    try:
        parsed = parse_storage_uri(value)
    except KeyRejected as exc:
        raise refuse(str(exc)) from None
    if want == "input" and parsed.is_folder:
        raise refuse("must name an image object, not a folder (it ends in '/')")
    if want == "output" and not parsed.key.endswith(OUTPUT_SUFFIXES):
        raise refuse("must end in '/' (a folder) or '.mp4' (an object)")
    return value


def _input_rule(value: Any) -> str:
    if not isinstance(value, str):
        raise refuse(f"must be a string, not {type_name(value)}")
    if not value:
        raise refuse("must not be empty")
    if len(value) > INPUT_MAX_CHARS:
        raise refuse(f"must be at most {INPUT_MAX_CHARS} characters (got {len(value)})")
    if problem := unstorable(value):
        raise refuse(problem)
    if value.startswith(STORAGE_SCHEME):
        return _storage_uri(value, want="input")
    try:
        check_url_syntax(value, ports=settings.GENERATOR_FETCH_PORTS, allow_hosts=settings.GENERATOR_FETCH_ALLOW_HOSTS)
    except UrlRejected as exc:
        raise refuse(f"{exc} (expected an http(s) URL or storage://<name>/<path>)") from None
    return value


def _output_rule(value: Any) -> str:
    if not isinstance(value, str):
        raise refuse(f"must be a string, not {type_name(value)}")
    if problem := unstorable(value):
        raise refuse(problem)
    if not value.startswith(STORAGE_SCHEME):
        raise refuse("must be storage://<name>/<dir>/ or storage://<name>/<path>.mp4")
    return _storage_uri(value, want="output")


def _prompt_shape(value: Any) -> Any:
    if not isinstance(value, str | dict):
        raise refuse(f"must be a string or an object, not {type_name(value)}")
    return value


def _prompt_kind(value: Any) -> str:
    """Pick the prompt's form: a string, an object with text, or an automatic prompt (validated or being dumped)."""
    if isinstance(value, str):
        return "~string"
    if isinstance(value, dict):
        return "~text" if "text" in value else "~auto"
    return "~text" if isinstance(value, PromptText) else "~auto"


def _duration_rule(value: Any) -> int:
    # bool is an int in Python and 5.0 is a float: both are refused.
    if isinstance(value, int) and not isinstance(value, bool) and value in DURATIONS:
        return value
    if isinstance(value, str) and value in {str(d) for d in DURATIONS}:
        return int(value)
    raise refuse('must be 5 or 10 (a number or the string "5" or "10")')


def _choice_rule(choices: tuple[str, ...]):
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise refuse(f"must be a string, not {type_name(value)}")
        if value not in choices:
            raise refuse(f"must be one of: {', '.join(choices)}")
        return value

    return check


def _loop_rule(value: Any) -> bool:
    if not isinstance(value, bool):
        raise refuse(f"must be true or false, not {type_name(value)}")
    return value


def _background_rule(value: Any) -> str:
    if not isinstance(value, str):
        raise refuse(f"must be a string, not {type_name(value)}")
    if value in BACKGROUNDS:
        return value
    if BACKGROUND_COLOUR.match(value):
        return value.upper()
    raise refuse(f"must be one of: {', '.join(BACKGROUNDS)}, or a colour #RRGGBB")


def _engine_choice_rule(value: Any) -> str:
    # Which names exist is the team's: the generations service checks that (docs/engines.md).
    if not isinstance(value, str) or not ENGINE_NAME.match(value):
        raise refuse("must be 'builtin' or the name of one of the team's engine connections")
    return value


def _guidance_rule(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise refuse(f"must be a number from 0 to 1, not {type_name(value)}")
    # Compare before converting: a 5000-digit integer does not fit in a float.
    if not (0 <= value <= 1) or (isinstance(value, float) and not math.isfinite(value)):
        raise refuse("must be between 0 and 1")
    return float(value)


PromptString = Annotated[
    str,
    Field(min_length=PROMPT_MIN_CHARS, max_length=PROMPT_MAX_CHARS),
    BeforeValidator(_text_rule(PROMPT_MIN_CHARS, PROMPT_MAX_CHARS)),
]
Guidelines = Annotated[
    str,
    Field(
        min_length=GUIDELINES_MIN_CHARS,
        max_length=GUIDELINES_MAX_CHARS,
        description="Words that steer the automatic prompt.",
    ),
    BeforeValidator(_text_rule(GUIDELINES_MIN_CHARS, GUIDELINES_MAX_CHARS)),
]


# --- the request --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFormat:
    """The frame a request asks for, defaults applied."""

    aspect_ratio: str
    resolution: str
    loop: bool
    background: str


class PromptText(RequestModel):
    """A text prompt given as an object."""

    text: PromptString

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        faults: Details = {}
        if "generate" in data:
            if data["generate"] is not True:
                faults["generate"] = [GENERATE_TRUE]
            faults[""] = ["give either text or generate: true, not both"]
        elif "guidelines" in data:
            faults["guidelines"] = ["guidelines steer an automatic prompt; they cannot go with text"]
        return {key: value for key, value in data.items() if key not in {"generate", "guidelines"}}, faults


class PromptAuto(RequestModel):
    """Let the engine analyse the image and choose; `guidelines` steer it."""

    NULL_MEANS_ABSENT = True

    generate: Literal[True]
    guidelines: Guidelines = None  # type: ignore[assignment]

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        if "generate" not in data:
            return {**data, "generate": True}, {"": ["must have text, or generate: true"]}
        if data["generate"] is not True:
            return {**data, "generate": True}, {"generate": [GENERATE_TRUE]}
        return data, {}


FORMAT_DOCS = {
    "aspect_ratio": "The video's shape: `source` keeps the photo's; 16:9, 9:16, 1:1 and 4:5 are framed around the "
    "product. Echoed, with the other format options, only when one of them is sent.",
    "resolution": "1080p: the short side of a fixed shape is 1080 px (9:16 is 1080x1920), the photo's own shape is "
    "at most 1920 px long; 720p: 720 px, at most 1280 px.",
    "loop": "A seamless loop: the last frame flows into the first (periodic moves, no fade).",
    "background": "What fills the frame where the photo does not reach: `blur` (a blurred, darkened copy), "
    "`extend` (the photo's plain border colour), a colour `#RRGGBB`, or `auto` (extend on a plain "
    "background, else blur).",
}


def _format_field(name: str, **schema: Any) -> Any:
    """The Field of a format option: documented with its default, which cross_check applies."""
    return Field(description=FORMAT_DOCS[name], json_schema_extra={"default": FORMAT_DEFAULTS[name], **schema})


ShapeOption = Annotated[Literal[SHAPES], BeforeValidator(_choice_rule(SHAPES)), _format_field("aspect_ratio")]  # type: ignore[valid-type]
ResolutionOption = Annotated[
    Literal[RESOLUTIONS],  # type: ignore[valid-type]
    BeforeValidator(_choice_rule(RESOLUTIONS)),
    _format_field("resolution"),
]
LoopOption = Annotated[bool, BeforeValidator(_loop_rule), _format_field("loop")]
BACKGROUND_SCHEMA = [
    {"type": "string", "enum": list(BACKGROUNDS)},
    {"type": "string", "pattern": BACKGROUND_COLOUR.pattern},
]
BackgroundOption = Annotated[
    str, BeforeValidator(_background_rule), _format_field("background", anyOf=BACKGROUND_SCHEMA)
]


class GenerateOptions(RequestModel):
    """How the video is made. A null option counts as absent; absent options take their default."""

    NULL_MEANS_ABSENT = True

    prompt: Annotated[
        Annotated[PromptString, Tag("~string")]
        | Annotated[PromptText, Tag("~text")]
        | Annotated[PromptAuto, Tag("~auto")],
        Discriminator(_prompt_kind),
        BeforeValidator(_prompt_shape),
        Field(description="Words that choose the camera moves and effects, or an object (text, or generate: true)."),
    ]
    negative_prompt: Annotated[
        PromptString, Field(description="Moves and effects to leave out, e.g. 'shake, fast motion'.")
    ] = None  # type: ignore[assignment]
    duration: Annotated[
        Literal[5, 10] | Literal["5", "10"],
        BeforeValidator(_duration_rule),
        Field(description="Seconds: 5 or 10, as a number or a string; echoed as a number."),
    ] = DEFAULT_DURATION
    guidance_scale: Annotated[
        float,
        Field(ge=0, le=1, description="How strongly the prompt's wishes win over the engine's defaults."),
        BeforeValidator(_guidance_rule),
    ] = DEFAULT_GUIDANCE_SCALE
    aspect_ratio: ShapeOption = None
    resolution: ResolutionOption = None
    loop: LoopOption = None  # type: ignore[assignment]
    background: BackgroundOption = None  # type: ignore[assignment]

    engine: Annotated[
        str,
        BeforeValidator(_engine_choice_rule),
        Field(
            description="Where the video is made: `builtin` or one of the team's engine connections (GET "
            "/v1/engines). Absent: the team's default engine."
        ),
    ] = None  # type: ignore[assignment]

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        if any(data.get(name) is not None for name in FORMAT_DEFAULTS):
            data = {**data, **{name: value for name, value in FORMAT_DEFAULTS.items() if data.get(name) is None}}
        return data, {}

    @property
    def output_format(self) -> OutputFormat:
        """The format options as they apply: the values sent, or their defaults."""
        sent = {name: getattr(self, name) for name in FORMAT_DEFAULTS}
        return OutputFormat(**{name: FORMAT_DEFAULTS[name] if value is None else value for name, value in sent.items()})


class GenerateRequest(RequestModel):
    """The body of POST /v1/video/generate; once validated, also the normalised request the API echoes."""

    NULL_MEANS_ABSENT = True

    input: Annotated[
        str,
        Field(
            min_length=1,
            max_length=INPUT_MAX_CHARS,
            description="An http(s) URL of the image, or storage://<name>/<path> of one of the team's storages.",
        ),
        BeforeValidator(_input_rule),
    ]
    output: Annotated[
        str,
        Field(
            description="storage://<name>/<dir>/ (a unique file name is made) or storage://<name>/<path>.mp4. "
            "Absent: the temporary store (24 h link)."
        ),
        BeforeValidator(_output_rule),
    ] = None  # type: ignore[assignment]
    options: GenerateOptions

    @property
    def duration(self) -> int:
        return int(self.options.duration)

    @property
    def output_format(self) -> OutputFormat:
        return self.options.output_format

    def echo(self) -> dict:
        """Return the request as the API echoes it: defaults filled in, duration a number, output only when given."""
        return self.model_dump(mode="json", exclude_none=True)


# --- the answers ----------------------------------------------------------------------------------

Timestamp = Annotated[
    str,
    Field(
        pattern=TIMESTAMP_PATTERN,
        json_schema_extra={"format": "date-time"},
        description="ISO 8601 in UTC with microseconds and +00:00.",
    ),
]
STATUSES: tuple[str, ...] = tuple(models.Generation.Status.values)
Status = Literal[STATUSES]  # type: ignore[valid-type]


class GenerationAccepted(ResponseModel):
    """The answer to an accepted POST: the job is PROCESSING; poll `result_url`."""

    id: int
    status: Literal["PROCESSING"]
    result_url: Annotated[str, Field(json_schema_extra={"format": "uri"})]
    created_at: Timestamp
    request: Annotated[GenerateRequest, Field(description="The normalised request (defaults filled in).")]


class InputObject(ResponseModel):
    """What the worker found in the input image."""

    ext: str | None = None
    mps: Annotated[float | None, Field(description="Megapixels of the source image.")] = None
    mime: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    generated_prompt: str | None = None


class OutputObject(ResponseModel):
    """Where the video is: a signed 24 h link, and the object when it went to a storage."""

    ext: Literal["mp4"]
    mime: Literal["video/mp4"]
    format: Literal["mp4"]
    tmp_url: Annotated[
        str | None, Field(json_schema_extra={"format": "uri"}, description="Signed link, valid 24 h.")
    ] = None
    object_key: str | None = None
    object_bucket: str | None = None
    object_uri: str | None = None
    claid_storage_uri: str | None = None


class GenerationErrorItem(ResponseModel):
    error: str
    created_at: Timestamp


class GenerationResult(ResponseModel):
    """`{}` unless the status is DONE."""

    input_object: InputObject | None = None
    output_object: OutputObject | None = None


ENGINE_TYPES: tuple[str, ...] = tuple(models.EngineConnection.Type.values)


class GenerationEngine(ResponseModel):
    """Where an upstream-made video was made (absent for the built-in engine)."""

    name: str
    type: Literal[ENGINE_TYPES]  # type: ignore[valid-type]
    model: str | None = None
    upstream_id: str | None = None


class Generation(ResponseModel):
    """One generation: its status, the request, and once DONE where the video is."""

    id: int
    status: Status
    created_at: Timestamp
    request: GenerateRequest
    errors: Annotated[list[GenerationErrorItem], Field(description="Empty unless status is ERROR.")]
    result: GenerationResult
    engine: Annotated[GenerationEngine | None, Field(description="Absent for the built-in engine.")] = None


class GenerationList(ResponseModel):
    """One page of the team's generations, newest first."""

    data: list[Generation]
    next_cursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page; null at the end.")]


# --- the list's query ----------------------------------------------------------------------------

LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 20, 100
CURSOR_INVALID = "not a cursor from this API"


def cursor_encode(generation: models.Generation) -> str:
    """Return the opaque cursor that continues a listing after `generation`."""
    raw = f"{generation.created_at.isoformat()}|{generation.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(value: str) -> tuple[datetime, int] | None:
    """Return the (created_at, id) a cursor continues after, or None if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        moment_text, _, pk_text = raw.rpartition("|")
        moment = parse_datetime(moment_text)
        pk = int(pk_text)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        return None
    if moment is None or moment.tzinfo is None or not 0 <= pk <= models.PUBLIC_ID_MAX:
        return None
    return moment, pk


def _cursor_rule(value: Any) -> str:
    if not isinstance(value, str) or cursor_decode(value) is None:
        raise refuse(CURSOR_INVALID)
    return value


def _status_rule(value: Any) -> str:
    status = str(value).upper()
    if status not in STATUSES:
        raise refuse(f"must be one of {', '.join(STATUSES)}")
    return status


def _limit_rule(value: Any) -> int:
    text = str(value)
    if text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= LIST_LIMIT_MAX:
        return int(text)
    raise refuse(f"must be a whole number from 1 to {LIST_LIMIT_MAX}")


class GenerationListQuery(RequestModel):
    """The query of GET /v1/video/generate; an empty value counts as absent."""

    status: Annotated[Status, BeforeValidator(_status_rule), Field(description="Only generations in this status.")] = (
        None
    )
    limit: Annotated[int, Field(ge=1, le=LIST_LIMIT_MAX, description="Page size."), BeforeValidator(_limit_rule)] = (
        LIST_LIMIT_DEFAULT
    )
    cursor: Annotated[
        str, BeforeValidator(_cursor_rule), Field(description="The `next_cursor` of the previous page.")
    ] = None  # type: ignore[assignment]

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        return {key: value for key, value in data.items() if value not in (None, "")}, {}

    @property
    def after(self) -> tuple[datetime, int] | None:
        """The (created_at, id) this page starts after, if a cursor was given."""
        return cursor_decode(self.cursor) if self.cursor else None
