"""Batches: accept a whole catalogue at once, then submit it item by item at the team's rate (docs/batches.md).

Accepting (`batch_create`) checks every input the way a single submit does and writes the batch
and its items, charging nothing. The dispatcher (`batches_dispatch`, a ticker finder) submits
pending items through the normal create service, under the team's row lock, only while both rate
windows have room (so no item ever meets a 429) and while credits and the creator's monthly cap
allow; short of credits the batch waits and resumes by itself. It finishes batches whose items
have all ended, and the team's webhook hears about it.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from generator.contract.base import Details, validation_failed
from generator.contract.batches import MAX_ITEMS, BatchCreate
from generator.contract.generate import STORAGE_SCHEME, GenerateRequest
from generator.errors import Conflict, InsufficientCredits, RateLimited, ValidationFailed
from generator.models import ApiKey, Batch, BatchItem, Generation, Membership, Storage, Team
from generator.naming import safe_stem
from generator.services import billing
from generator.services.engine_connections import engine_price
from generator.services.generations import generation_cancel, generation_create, no_storage_named
from generator.services.ratelimit import ratelimit_admits, ratelimit_status
from generator.services.webhooks import batch_webhook_deliver_later
from generator.storage.base import StorageError, is_image_name
from generator.storage.registry import get_connector
from generator.storage.uris import KeyRejected, parse_storage_uri

logger = logging.getLogger(__name__)

State = Batch.State
ItemState = BatchItem.State
ACTIVE = (State.RUNNING, State.WAITING_FOR_CREDITS)
# At most this many bad inputs are named one by one in a 422; the rest are summed up.
MAX_NAMED_FAULTS = 100
# Items handed out per team and tick at most (the rate windows bind long before, unless raised).
MAX_PER_TEAM_TICK = 50
BULK_SIZE = 1000

Clock = Callable[[], datetime]


# --- accepting a batch ----------------------------------------------------------------------------


def batch_inputs_from_text(text: str) -> list[str]:
    """Read image addresses from pasted text or a CSV: per line, its first http(s):// or storage:// cell.

    A line of one value is taken as it is (its check as an input names what is wrong). A first line
    without an address is a header and skipped; a later row of several cells without one is a 422.
    """
    inputs: list[str] = []
    faults: Details = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row if cell.strip()]
        if not cells:
            continue
        found = next((cell for cell in cells if cell.lower().startswith(("http://", "https://", STORAGE_SCHEME))), None)
        if found is not None:
            inputs.append(found)
        elif len(cells) == 1 and (number > 1 or "://" in cells[0]):
            inputs.append(cells[0])  # a plain list: the input's own check says what is wrong with it
        elif number > 1:
            faults[f"line {number}"] = ["has no http(s):// or storage:// address"]
    if faults:
        raise validation_failed(_trimmed(faults))
    if not inputs:
        raise validation_failed({"inputs": ["no http(s):// or storage:// address found"]})
    return inputs


def _trimmed(faults: Details) -> Details:
    if len(faults) <= MAX_NAMED_FAULTS:
        return faults
    named = dict(list(faults.items())[:MAX_NAMED_FAULTS])
    return {**named, "inputs": [f"{len(faults)} entries are invalid; the first {MAX_NAMED_FAULTS} are named"]}


def _stem(source: str) -> str:
    if source.startswith(STORAGE_SCHEME):
        # Not parsed: a listed folder's key may break the key rules, and its check names it (422).
        name = PurePosixPath(source[len(STORAGE_SCHEME) :].partition("/")[2]).name
    else:
        name = PurePosixPath(unquote(urlsplit(source).path)).name
    return safe_stem(name)


def output_names(inputs: Iterable[str]) -> list[str]:
    """Name each input's video after it: <stem>.mp4, then <stem>-2.mp4, <stem>-3.mp4 on collisions."""
    taken: set[str] = set()
    next_suffix: dict[str, int] = {}
    names = []
    for source in inputs:
        stem = _stem(source)
        name = f"{stem}.mp4"
        while name in taken:
            suffix = next_suffix.get(stem, 2)
            next_suffix[stem] = suffix + 1
            name = f"{stem}-{suffix}.mp4"
        taken.add(name)
        names.append(name)
    return names


def _folder_inputs(*, team: Team, folder: str, recursive: bool) -> list[str]:
    parsed_name, _, key = folder[len(STORAGE_SCHEME) :].partition("/")
    storage = Storage.objects.filter(team=team, name=parsed_name).first()
    if storage is None:
        raise validation_failed({"input_folder": [no_storage_named(parsed_name)]})
    try:
        # Files that are not images are listed too; a folder of more than four times the limit is refused unread.
        entries = get_connector(storage).walk(key, recursive=recursive, limit=MAX_ITEMS * 4)
    except StorageError as exc:
        raise validation_failed({"input_folder": [str(exc)]}) from None
    images = [f"{STORAGE_SCHEME}{storage.name}/{entry.key}" for entry in entries if is_image_name(entry.name)]
    if len(images) > MAX_ITEMS or len(entries) >= MAX_ITEMS * 4:
        raise validation_failed(
            {"input_folder": [f"holds more than {MAX_ITEMS} images; split it into several batches"]}
        )
    if not images:
        where = "this folder or its subfolders" if recursive else "this folder"
        raise validation_failed({"input_folder": [f"there are no images (.jpg, .png, .webp, .heic) in {where}"]})
    return images


def _item_bodies(request: BatchCreate, inputs: list[str], names: list[str]) -> list[dict]:
    options = request.options.model_dump(mode="json", exclude_none=True)
    bodies = []
    for source, name in zip(inputs, names, strict=True):
        body: dict[str, Any] = {"input": source, "options": options}
        if request.output is not None:
            body["output"] = f"{request.output}{name}"
        bodies.append(body)
    return bodies


def _storage_faults(*, team: Team, field: str, inputs: list, known: Details) -> Details:
    """Name each input whose storage:// names no storage of the team (the single submit's check)."""
    storages = set(Storage.objects.filter(team=team).values_list("name", flat=True))
    faults: Details = {}
    for index, value in enumerate(inputs):
        if not isinstance(value, str) or not value.startswith(STORAGE_SCHEME) or f"{field}.{index}" in known:
            continue
        try:
            name = parse_storage_uri(value).name
        except KeyRejected:
            continue
        if name not in storages:
            faults[f"{field}.{index}"] = [no_storage_named(name)]
    return faults


def _in_input_order(details: Details, field: str) -> Details:
    def rank(key: str) -> tuple[int, int]:
        head, _, index = key.partition(".")
        return (0, int(index)) if head == field and index.isdigit() else (1, 0)

    return dict(sorted(details.items(), key=lambda item: rank(item[0])))


def _check_items(*, team: Team, field: str, bodies: list[dict], names: list[str], output: str | None) -> Details:
    """Validate every item as the single submit would; name faults `<field>.<index>` (or `output`)."""
    faults: Details = {}
    for index, (body, name) in enumerate(zip(bodies, names, strict=True)):
        try:
            GenerateRequest.parse(body)
        except ValidationFailed as exc:
            for key, messages in exc.details.items():
                if key == "output":
                    # The folder itself passed; with this item's video name its object key does not.
                    # Said once, for the first such item, not once per item.
                    faults.setdefault(key, [f"with the video name {name!r}: {messages[0]}"])
                elif key != "input":
                    known = faults.setdefault(key, [])
                    known.extend(message for message in messages if message not in known)
                elif field == "input_folder":  # name the file, not its place in a listing
                    faults.setdefault(field, []).extend(f"{body['input']}: {message}" for message in messages)
                else:
                    faults.setdefault(f"{field}.{index}", []).extend(messages)
    faults.update(_storage_faults(team=team, field=field, inputs=[body["input"] for body in bodies], known=faults))
    if output is not None:
        storage_name = output[len(STORAGE_SCHEME) :].partition("/")[0]  # the contract checked its form
        if not Storage.objects.filter(team=team, name=storage_name).exists():
            faults["output"] = [no_storage_named(storage_name)]
    return _in_input_order(faults, field)


def batch_parse(body: Any, *, team: Team) -> tuple[BatchCreate, list[str]]:
    """Validate a batch body and return it with its inputs (a folder is listed); 422 naming each bad input."""
    try:
        request = BatchCreate.parse(body)
    except ValidationFailed as exc:
        details = dict(exc.details)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if isinstance(inputs, list) and len(inputs) <= MAX_ITEMS:
            details.update(_storage_faults(team=team, field="inputs", inputs=inputs, known=details))
        raise validation_failed(_trimmed(_in_input_order(details, "inputs"))) from None
    if request.input_folder is not None:
        return request, _folder_inputs(team=team, folder=request.input_folder, recursive=request.recursive)
    return request, list(request.inputs)


@dataclass(frozen=True)
class PreparedBatch:
    """A batch body that passed every check, with its inputs listed and named; nothing is written yet."""

    team: Team
    user: Any
    api_key: ApiKey | None
    options: dict
    output: str
    source: dict
    inputs: list[str]
    names: list[str]


def batch_prepare(
    *,
    team: Team,
    body: Any,
    user=None,
    api_key: ApiKey | None = None,
    source: dict | None = None,
) -> PreparedBatch:
    """Check a batch body and every input (422 naming `inputs.<i>`), listing a folder; read-only.

    It runs outside any transaction: listing a large bucket folder and checking 10,000 inputs takes
    seconds, and on SQLite an open transaction holds the one write lock every worker needs.
    """
    if user is None and api_key is not None:
        user = api_key.created_by
    request, inputs = batch_parse(body, team=team)
    names = output_names(inputs)
    bodies = _item_bodies(request, inputs, names)
    field = "inputs" if request.inputs is not None else "input_folder"
    faults = _check_items(team=team, field=field, bodies=bodies, names=names, output=request.output)
    if faults:
        raise validation_failed(_trimmed(faults))
    described = dict(source or {})
    if request.input_folder is not None:
        described.setdefault("type", "folder")
        described.update(folder=request.input_folder, recursive=request.recursive)
    else:
        described.setdefault("type", "inputs")
    return PreparedBatch(
        team=team,
        user=user,
        api_key=api_key,
        options=bodies[0]["options"],
        output=request.output or "",
        source=described,
        inputs=inputs,
        names=names,
    )


@transaction.atomic
def batch_write(prepared: PreparedBatch) -> Batch:
    """Write a prepared batch and its items in one transaction; charge nothing yet."""
    inputs, names = prepared.inputs, prepared.names
    batch = Batch.objects.create(
        team=prepared.team,
        created_by=prepared.user,
        api_key=prepared.api_key,
        options=prepared.options,
        output=prepared.output,
        source=prepared.source,
        item_count=len(inputs),
        # What each item will hold: the price of the batch's engine (options.engine, else the team's default).
        cost_per_item=engine_price(
            team=prepared.team, name=prepared.options.get("engine"), duration=int(prepared.options.get("duration", 5))
        ),
    )
    for start in range(0, len(inputs), BULK_SIZE):
        BatchItem.objects.bulk_create(
            BatchItem(batch=batch, position=start + offset + 1, input=source, output_name=name)
            for offset, (source, name) in enumerate(
                zip(inputs[start : start + BULK_SIZE], names[start : start + BULK_SIZE], strict=True)
            )
        )
    return batch


def batch_create(
    *,
    team: Team,
    body: Any,
    user=None,
    api_key: ApiKey | None = None,
    source: dict | None = None,
) -> Batch:
    """Accept a batch: validate every input (422 naming `inputs.<i>`), write it and its items; charge nothing yet."""
    return batch_write(batch_prepare(team=team, body=body, user=user, api_key=api_key, source=source))


# --- dispatching ----------------------------------------------------------------------------------


class _Outcome(Enum):
    SENT = "sent"
    REFUSED = "refused"  # the item was refused (never charged); the next may go
    RATE = "rate"  # the team's windows are full: nothing more this tick
    SHORT = "short"  # not enough credits or cap: the batch waits
    EMPTY = "empty"  # nothing pending (or the batch is no longer active)


class _Raced(Exception):
    """Another dispatcher submitted the item first; roll back what this one did."""


def _item_request(batch: Batch, item: BatchItem) -> GenerateRequest:
    body: dict[str, Any] = {"input": item.input, "options": batch.options}
    if batch.output:
        body["output"] = f"{batch.output}{item.output_name}"
    return GenerateRequest.parse(body)


def _dispatch_one(batch: Batch, clock: Clock) -> _Outcome:
    try:
        with transaction.atomic():
            team = billing.team_lock(batch.team_id)
            # Under the team lock: cancel takes it too, so a cancelled batch submits nothing more.
            state = Batch.objects.filter(pk=batch.pk).values_list("state", flat=True).first()
            if state not in ACTIVE:
                return _Outcome.EMPTY
            item = BatchItem.objects.filter(batch=batch, state=ItemState.PENDING).order_by("position").first()
            if item is None:
                return _Outcome.EMPTY
            moment = clock()  # read under the lock, like the create service, so the windows stay exact
            if not ratelimit_admits(ratelimit_status(team=team, now=moment)):
                return _Outcome.RATE
            try:
                request = _item_request(batch, item)
                with transaction.atomic():
                    result = generation_create(
                        team=team, request=request, user=batch.created_by, api_key=batch.api_key, now=moment
                    )
            except InsufficientCredits as exc:
                Batch.objects.filter(pk=batch.pk, state__in=ACTIVE).update(
                    state=State.WAITING_FOR_CREDITS, waiting_reason=exc.message[:500], updated_at=moment
                )
                return _Outcome.SHORT
            except RateLimited:  # cannot happen after the check above; never let it reach the item
                return _Outcome.RATE
            except ValidationFailed as exc:
                # E.g. the input's storage was disconnected since the batch was accepted.
                reason = "; ".join(f"{key}: {', '.join(messages)}" for key, messages in exc.details.items())
                BatchItem.objects.filter(pk=item.pk, state=ItemState.PENDING).update(
                    state=ItemState.REFUSED, error=(reason or exc.message)[:500]
                )
                return _Outcome.REFUSED
            if not BatchItem.objects.filter(pk=item.pk, state=ItemState.PENDING).update(
                state=ItemState.SUBMITTED, generation=result.generation
            ):
                raise _Raced
            Batch.objects.filter(pk=batch.pk, state=State.WAITING_FOR_CREDITS).update(
                state=State.RUNNING, waiting_reason="", updated_at=moment
            )
            return _Outcome.SENT
    except _Raced:
        return _Outcome.REFUSED


def _affordable(batch: Batch) -> bool:
    """Cheap look, without locks, whether a waiting batch's next item could be paid for now."""
    balance = Team.objects.filter(pk=batch.team_id).values_list("balance", flat=True).first() or 0
    if balance < batch.cost_per_item:
        return False
    user = batch.created_by
    if user is None:
        return True
    cap = Membership.objects.filter(team_id=batch.team_id, user=user).values_list("monthly_cap", flat=True).first()
    if cap is None:
        return True
    spent = billing.member_spent_this_month(team=batch.team, user=user)
    return spent + batch.cost_per_item <= cap


def _dispatch_team(team_id: int, clock: Clock) -> int:
    sent = steps = 0
    batches = (
        Batch.objects.filter(team_id=team_id, state__in=ACTIVE)
        .select_related("team", "created_by", "api_key")
        .order_by("created_at", "pk")
    )
    for batch in batches:
        if batch.state == State.WAITING_FOR_CREDITS and not _affordable(batch):
            continue
        while steps < MAX_PER_TEAM_TICK:
            steps += 1
            outcome = _dispatch_one(batch, clock)
            if outcome is _Outcome.SENT:
                sent += 1
            elif outcome is _Outcome.RATE:
                return sent
            elif outcome in (_Outcome.SHORT, _Outcome.EMPTY):
                break
    return sent


def batches_finish(*, now: datetime | None = None) -> int:
    """Mark running batches whose items have all ended as done, and tell the team's webhook; return how many."""
    now = now or timezone.now()
    pending = BatchItem.objects.filter(batch=OuterRef("pk"), state=ItemState.PENDING)
    running = BatchItem.objects.filter(
        batch=OuterRef("pk"), state=ItemState.SUBMITTED, generation__status=Generation.Status.PROCESSING
    )
    finished = 0
    for pk in (
        Batch.objects.filter(state=State.RUNNING)
        .filter(~Exists(pending), ~Exists(running))
        .values_list("pk", flat=True)
    ):
        with transaction.atomic():
            if Batch.objects.filter(pk=pk, state=State.RUNNING).update(
                state=State.DONE, completed_at=now, updated_at=now
            ):
                batch_webhook_deliver_later(pk)
                finished += 1
    return finished


def batches_dispatch(*, now: datetime | None = None, clock: Clock | None = None) -> int:
    """Ticker finder: submit due items of every active batch at its team's rate; finish ended batches.

    Safe on several tickers at once: each item is submitted under its team's row lock and marked
    with a conditional update in the same transaction. `clock` reads the time of each submission
    (tests pass a controlled one); it is read under the lock.
    """
    clock = clock or timezone.now
    team_ids = list(Batch.objects.filter(state__in=ACTIVE).order_by().values_list("team_id", flat=True).distinct())
    sent = 0
    for team_id in team_ids:
        try:
            sent += _dispatch_team(team_id, clock)
        except Exception:
            # One team's failure (a database hiccup, a bug an item trips) must not stop every other
            # team's batches; its transaction rolled back, so its item is tried again next tick.
            logger.exception("batches: dispatching team %s failed; the other teams go on", team_id)
    batches_finish(now=clock())
    return sent


# --- cancel and retry -----------------------------------------------------------------------------


def batch_cancel(*, team: Team, batch: Batch) -> Batch:
    """Stop a batch: pending items are cancelled (never charged), queued ones cancelled and refunded.

    Items already running finish, or fail and are refunded, as usual. Conflict once the batch is done.
    """
    now = timezone.now()
    with transaction.atomic():
        billing.team_lock(team.pk)  # the dispatcher submits under this lock: after it, nothing more goes out
        updated = Batch.objects.filter(pk=batch.pk, team=team, state__in=ACTIVE).update(
            state=State.CANCELLED, completed_at=now, waiting_reason="", updated_at=now
        )
        if not updated:
            batch.refresh_from_db()
            if batch.state == State.CANCELLED:
                return batch
            raise Conflict("the batch has already finished")
        BatchItem.objects.filter(batch=batch, state=ItemState.PENDING).update(state=ItemState.CANCELLED)
        batch_webhook_deliver_later(batch.pk)
    # Each queued job is cancelled in its own transaction (job row, then the team's refund), the
    # order every other writer takes those locks in.
    queued = Generation.objects.filter(
        batch_item__batch=batch, status=Generation.Status.PROCESSING, stage=Generation.Stage.QUEUED
    )
    for generation in queued.iterator(chunk_size=500):
        try:
            generation_cancel(team=team, generation=generation)
        except Conflict:
            continue  # a worker took it meanwhile: it runs to the end like any started job
    batch.refresh_from_db()
    return batch


def batch_retry_failed(*, team: Team, batch: Batch, user=None, api_key: ApiKey | None = None) -> Batch:
    """Start a new batch with the same options and output from the items that ended in ERROR."""
    failed = (
        BatchItem.objects.filter(batch=batch)
        .filter(Q(state=ItemState.REFUSED) | Q(state=ItemState.SUBMITTED, generation__status=Generation.Status.ERROR))
        .order_by("position")
        .values_list("input", flat=True)
    )
    inputs = list(failed)
    if not inputs:
        raise ValidationFailed("no failed items", details={"batch": ["no item of this batch ended in error"]})
    body: dict[str, Any] = {"inputs": inputs, "options": batch.options}
    if batch.output:
        body["output"] = batch.output
    return batch_create(
        team=team, body=body, user=user, api_key=api_key, source={"type": "retry", "retry_of": batch.pk}
    )
