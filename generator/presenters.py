"""The JSON shapes of a generation and a batch (docs/api.md): the API answers them and webhooks POST them."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from generator import selectors
from generator.models import Batch, BatchItem, Generation
from generator.services.links import link_url

Status = Generation.Status
OUTPUT_FIELDS = ("ext", "mime", "format", "object_key", "object_bucket", "object_uri", "claid_storage_uri")
INPUT_FIELDS = ("ext", "mps", "mime", "format", "width", "height", "generated_prompt")


def timestamp(moment: datetime | str | None) -> str | None:
    """Format a moment as ISO 8601 in UTC with microseconds and +00:00, as every API timestamp is."""
    if moment is None:
        return None
    if isinstance(moment, str):
        parsed = parse_datetime(moment)
        if parsed is None:
            return moment
        moment = parsed
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _errors(generation: Generation) -> list[dict]:
    if generation.status != Status.ERROR:
        return []
    errors = [
        {"error": str(item.get("error", "")), "created_at": timestamp(item.get("created_at"))}
        for item in (generation.errors or [])
        if isinstance(item, dict)
    ]
    if not errors:  # an ERROR always says why, even if the row was failed by hand
        errors = [
            {"error": "the job failed", "created_at": timestamp(generation.completed_at or generation.updated_at)}
        ]
    return errors


def _result(generation: Generation) -> dict:
    if generation.status != Status.DONE:
        return {}
    stored_input = generation.input_object or {}
    input_object = {name: stored_input[name] for name in INPUT_FIELDS if stored_input.get(name) is not None}
    stored_output = generation.output_object or {}
    output_object = {name: stored_output[name] for name in OUTPUT_FIELDS if stored_output.get(name) is not None}
    output_object.setdefault("ext", "mp4")
    output_object.setdefault("mime", "video/mp4")
    output_object.setdefault("format", "mp4")
    # None once the output storage is disconnected: such a link would only answer 410. The
    # object_* fields stay, they say where the file is.
    tmp_url = link_url(generation)
    if tmp_url is not None:
        output_object["tmp_url"] = tmp_url
    return {"input_object": input_object, "output_object": output_object}


def engine_to_api(generation: Generation) -> dict | None:
    """Return data.engine: where an upstream-made video was made; None for the built-in engine."""
    info = generation.engine_info or {}
    if not info.get("name"):
        return None
    return {key: info[key] for key in ("name", "type", "model", "upstream_id") if info.get(key)}


def generation_to_api(generation: Generation) -> dict:
    """Return the "data" object of GET /v1/video/generate/{id}."""
    data = {
        "id": generation.pk,
        "status": generation.status,
        "created_at": timestamp(generation.created_at),
        "request": generation.request,
        "errors": _errors(generation),
        "result": _result(generation),
    }
    if (engine := engine_to_api(generation)) is not None:
        data["engine"] = engine
    return data


def generation_accepted_to_api(generation: Generation, *, result_url: str) -> dict:
    """Return the "data" object of an accepted POST /v1/video/generate."""
    return {
        "id": generation.pk,
        "status": generation.status,
        "result_url": result_url,
        "created_at": timestamp(generation.created_at),
        "request": generation.request,
    }


def batch_to_api(batch: Batch, *, counts: dict[str, int] | None = None, base_url: str | None = None) -> dict:
    """Return the "data" object of GET /v1/video/batches/{id} without its items (list, create, webhook)."""
    if counts is None:
        counts = selectors.batch_counts([batch.pk])[batch.pk]
    base = (base_url if base_url is not None else settings.GENERATOR_PUBLIC_URL).rstrip("/")
    data = {
        "id": batch.pk,
        "state": batch.state,
        "created_at": timestamp(batch.created_at),
        "completed_at": timestamp(batch.completed_at),
        "item_count": batch.item_count,
        "cost_per_item": batch.cost_per_item,
        "total_cost": batch.total_cost,
        "options": batch.options,
        "source": batch.source,
        "counts": counts,
        "result_url": base + reverse("api:batch-detail", args=[batch.pk]),
    }
    if batch.output:
        data["output"] = batch.output
    if batch.state == Batch.State.WAITING_FOR_CREDITS and batch.waiting_reason:
        data["waiting_reason"] = batch.waiting_reason
    return data


def batch_item_link(item: BatchItem) -> str | None:
    """Return the 24 h link of an item's finished video, or None."""
    generation = item.generation
    if generation is None or generation.status != Status.DONE:
        return None
    return link_url(generation)


def batch_item_error(item: BatchItem) -> str | None:
    """Return why an item ended in ERROR (refused when submitted, or its job's reason), else None."""
    if item.state == BatchItem.State.REFUSED:
        return item.error or "refused"
    generation = item.generation
    if generation is not None and generation.status == Status.ERROR:
        return "; ".join(entry["error"] for entry in _errors(generation))
    return None


def batch_item_to_api(item: BatchItem) -> dict:
    """Return one item of GET /v1/video/batches/{id} (annotated with its status by selectors.batch_items)."""
    data = {
        "position": item.position,
        "input": item.input,
        "status": item.status,
        "output_name": item.output_name,
        "generation_id": item.generation_id,
    }
    if (error := batch_item_error(item)) is not None:
        data["error"] = error
    if (link := batch_item_link(item)) is not None:
        data["tmp_url"] = link
    return data
