"""POST /v1/video/batches and the batch it answers with (docs/batches.md).

Every input follows the rule of a single submit's `input` and `options` are a single submit's
options (the same models), so a batch item is valid exactly when the same video submitted alone
would be. Rules that need the database or a storage (is `storage://name/...` one of the team's
storages, what a folder holds) are checked by services/batches.py.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from generator import models
from generator.contract.base import Details, RequestModel, ResponseModel, refuse, type_name, unstorable
from generator.contract.generate import (
    INPUT_MAX_CHARS,
    STATUSES,
    STORAGE_SCHEME,
    GenerateOptions,
    Timestamp,
    _input_rule,
    _output_rule,
)
from generator.storage.uris import NAME_RE, KeyRejected, validate_key

MAX_ITEMS = 10_000
FOLDER_ONLY = "a batch writes one video per input: give a folder ending in '/'"
ITEM_STATUSES = ("PENDING", *STATUSES)
BATCH_STATES: tuple[str, ...] = tuple(models.Batch.State.values)
ItemStatus = Literal[ITEM_STATUSES]  # type: ignore[valid-type]
BatchState = Literal[BATCH_STATES]  # type: ignore[valid-type]


def _inputs_rule(value: Any) -> Any:
    if not isinstance(value, list):
        raise refuse(f"must be an array of image URLs or storage:// paths, not {type_name(value)}")
    if not value:
        raise refuse("must not be empty")
    if len(value) > MAX_ITEMS:
        raise refuse(f"at most {MAX_ITEMS} inputs in one batch (got {len(value)}); split them into several batches")
    return value


def _folder_rule(value: Any) -> str:
    """storage://<name>/<dir>/, or storage://<name>/ for the storage's top folder."""
    if not isinstance(value, str):
        raise refuse(f"must be a string, not {type_name(value)}")
    if problem := unstorable(value):
        raise refuse(problem)
    if not value.startswith(STORAGE_SCHEME):
        raise refuse("must be storage://<name>/<folder>/")
    name, sep, key = value[len(STORAGE_SCHEME) :].partition("/")
    if not sep or not NAME_RE.match(name):
        raise refuse("must be storage://<name>/<folder>/ with a valid storage name")
    if key:
        if not key.endswith("/"):
            raise refuse("must name a folder, ending in '/'")
        try:
            validate_key(key)
        except KeyRejected as exc:
            raise refuse(str(exc)) from None
    return value


def _batch_output_rule(value: Any) -> str:
    value = _output_rule(value)
    if not value.endswith("/"):
        raise refuse(FOLDER_ONLY)
    return value


InputItem = Annotated[str, Field(min_length=1, max_length=INPUT_MAX_CHARS), BeforeValidator(_input_rule)]


class BatchCreate(RequestModel):
    """The body of POST /v1/video/batches: `inputs` or `input_folder`, and one video's options."""

    NULL_MEANS_ABSENT = True

    inputs: Annotated[
        list[InputItem],
        Field(
            min_length=1,
            max_length=MAX_ITEMS,
            description="Image URLs or storage:// paths, each as a single submit's `input`; errors name "
            "`inputs.<index>` (0-based).",
        ),
        BeforeValidator(_inputs_rule),
    ] = None  # type: ignore[assignment]
    input_folder: Annotated[
        str,
        Field(description="storage://<name>/<folder>/: every image in it (by extension; by content in the worker)."),
        BeforeValidator(_folder_rule),
    ] = None  # type: ignore[assignment]
    recursive: Annotated[bool, Field(description="With input_folder: include its subfolders.")] = False
    output: Annotated[
        str,
        Field(
            description="storage://<name>/<dir>/: each video is <dir>/<input's stem>.mp4 (-2, -3 on collisions in "
            "the batch). Absent: the temporary store (24 h links)."
        ),
        BeforeValidator(_batch_output_rule),
    ] = None  # type: ignore[assignment]
    options: GenerateOptions

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        given = [key for key in ("inputs", "input_folder") if data.get(key) is not None]
        if not given:
            return data, {"inputs": ["give inputs (a list of images) or input_folder"]}
        if len(given) == 2:
            return data, {"input_folder": ["give either inputs or input_folder, not both"]}
        if given == ["inputs"] and data.get("recursive") is not None:
            return data, {"recursive": ["only applies to input_folder"]}
        return data, {}


# --- the answers ----------------------------------------------------------------------------------


class BatchCounts(ResponseModel):
    """How many items are in each status (PENDING: not submitted yet)."""

    PENDING: int
    PROCESSING: int
    DONE: int
    ERROR: int
    CANCELLED: int


class Batch(ResponseModel):
    """A batch: its state, cost and counts. Items are listed by GET /v1/video/batches/{id}."""

    id: int
    state: Annotated[
        BatchState,
        Field(description="running; waiting_for_credits (resumes by itself after a top-up); done; cancelled."),
    ]
    created_at: Timestamp
    completed_at: Timestamp | None
    item_count: int
    cost_per_item: int
    total_cost: Annotated[int, Field(description="item_count x cost_per_item; each item is charged when submitted.")]
    options: GenerateOptions
    output: str | None = None
    source: Annotated[dict, Field(description="Where the inputs came from.")]
    counts: BatchCounts
    waiting_reason: Annotated[str | None, Field(description="Why a waiting batch waits.")] = None
    result_url: Annotated[str, Field(json_schema_extra={"format": "uri"})]


class BatchItem(ResponseModel):
    """One input of a batch; once submitted, its generation (GET /v1/video/generate/{id}) has the details."""

    position: Annotated[int, Field(description="1-based, in input order.")]
    input: str
    status: ItemStatus
    output_name: str
    generation_id: int | None
    error: str | None = None
    tmp_url: Annotated[str | None, Field(json_schema_extra={"format": "uri"}, description="When DONE: 24 h link.")] = (
        None
    )


class BatchDetail(Batch):
    items: list[BatchItem]
    next_cursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page of items.")]


class BatchList(ResponseModel):
    """One page of the team's batches, newest first."""

    data: list[Batch]
    next_cursor: str | None


# --- queries --------------------------------------------------------------------------------------

LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 20, 100
ITEMS_LIMIT_DEFAULT, ITEMS_LIMIT_MAX = 100, 1000
CURSOR_INVALID = "not a cursor from this API"


def position_cursor(value: int) -> str:
    """Return the opaque cursor continuing after this number (an item position or a batch id)."""
    return base64.urlsafe_b64encode(f"after:{value}".encode()).decode().rstrip("=")


def position_after(cursor: str | None) -> int | None:
    """Return the number a cursor continues after, or None if it is not one of ours."""
    if not isinstance(cursor, str):
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    label, _, number = raw.partition(":")
    if label != "after" or not number.isascii() or not number.isdigit() or len(number) > 18:
        return None
    return int(number)


def _cursor_rule(value: Any) -> str:
    if position_after(value) is None:
        raise refuse(CURSOR_INVALID)
    return value


def _limit_rule(high: int):
    def check(value: Any) -> int:
        text = str(value)
        if text.isascii() and text.isdigit() and len(text) <= 5 and 1 <= int(text) <= high:
            return int(text)
        raise refuse(f"must be a whole number from 1 to {high}")

    return check


def _item_status_rule(value: Any) -> str:
    status = str(value).upper()
    if status not in ITEM_STATUSES:
        raise refuse(f"must be one of {', '.join(ITEM_STATUSES)}")
    return status


class _Query(RequestModel):
    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        return {key: value for key, value in data.items() if value not in (None, "")}, {}


class BatchListQuery(_Query):
    """The query of GET /v1/video/batches; an empty value counts as absent."""

    limit: Annotated[
        int, Field(ge=1, le=LIST_LIMIT_MAX, description="Page size."), BeforeValidator(_limit_rule(LIST_LIMIT_MAX))
    ] = LIST_LIMIT_DEFAULT
    cursor: Annotated[
        str, BeforeValidator(_cursor_rule), Field(description="The `next_cursor` of the previous page.")
    ] = None  # type: ignore[assignment]


class BatchItemsQuery(_Query):
    """The query of GET /v1/video/batches/{id}: one page of items, in input order."""

    status: Annotated[
        ItemStatus | None, BeforeValidator(_item_status_rule), Field(description="Only items in this status.")
    ] = None
    limit: Annotated[
        int,
        Field(ge=1, le=ITEMS_LIMIT_MAX, description="Items per page."),
        BeforeValidator(_limit_rule(ITEMS_LIMIT_MAX)),
    ] = ITEMS_LIMIT_DEFAULT
    cursor: Annotated[
        str, BeforeValidator(_cursor_rule), Field(description="The `next_cursor` of the previous page.")
    ] = None  # type: ignore[assignment]
