"""The JSON shapes of a generation (SPEC 2.2): the API answers them and webhooks POST them."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from generator.models import Generation
from generator.services.links import link_url

Status = Generation.Status
OUTPUT_FIELDS = ("ext", "mime", "format", "object_key", "object_bucket", "object_uri", "claid_storage_uri")
INPUT_FIELDS = ("ext", "mps", "mime", "format", "width", "height", "generated_prompt")


def timestamp(moment: datetime | str | None) -> str | None:
    """Format a moment as ISO 8601 in UTC with microseconds and +00:00 (SPEC 10 "Time")."""
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


def generation_to_api(generation: Generation) -> dict:
    """Return the "data" object of GET /v1/video/generate/{id}."""
    return {
        "id": generation.pk,
        "status": generation.status,
        "created_at": timestamp(generation.created_at),
        "request": generation.request,
        "errors": _errors(generation),
        "result": _result(generation),
    }


def generation_accepted_to_api(generation: Generation, *, result_url: str) -> dict:
    """Return the "data" object of an accepted POST /v1/video/generate (SPEC 2.1)."""
    return {
        "id": generation.pk,
        "status": generation.status,
        "result_url": result_url,
        "created_at": timestamp(generation.created_at),
        "request": generation.request,
    }
