"""Accepting work: create a generation (rate windows, hold), cancel, retry and delete it.

Running it is the worker's side, in services/worker.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from generator.contract.base import Details, validation_failed
from generator.contract.generate import STORAGE_SCHEME, GenerateRequest
from generator.errors import (
    Conflict,
    Forbidden,
    InsufficientCredits,
    RateLimited,
    RateLimitStatus,
    ValidationFailed,
)
from generator.models import ApiKey, Generation, Membership, Storage, Team
from generator.services import billing
from generator.services.engine_connections import engine_choose
from generator.services.generation_files import default_files_delete, folder_output_delete
from generator.services.queue import enqueue_on_commit
from generator.services.ratelimit import ratelimit_admits, ratelimit_status
from generator.storage.uris import parse_storage_uri

# A slot: the worker takes the next job in the fair rotation (docs/queue.md), not a named one.
RUN_TASK = "generator.tasks.generation_run_task"
UPSTREAM_CANCEL_TASK = "generator.tasks.upstream_cancel_task"
# A queued job whose task has not started by then is re-enqueued by the reaper (lost by the broker).
QUEUED_STALE_S = 300

Status = Generation.Status
Stage = Generation.Stage


@dataclass(frozen=True)
class CreateResult:
    generation: Generation
    rate: RateLimitStatus


def queued_stale_s() -> int:
    return int(getattr(settings, "GENERATOR_QUEUED_STALE_S", QUEUED_STALE_S))


def no_storage_named(name: str) -> str:
    """The 422 message for a storage:// URI whose storage is not one of the team's."""
    return f"no storage named {name!r} in this team"


def _storage_named(*, team: Team, uri: str, field: str) -> tuple[Storage, str]:
    """Return the team's storage a (validated) storage:// URI names, and the key; 422 naming `field` if none."""
    parsed = parse_storage_uri(uri)
    storage = Storage.objects.filter(team=team, name=parsed.name).first()
    if storage is None:
        raise validation_failed({field: [no_storage_named(parsed.name)]})
    return storage, parsed.key


def _in_field_order(details: Details) -> Details:
    """Order details like the body: unknown keys first, then input, output, options."""
    fields = list(GenerateRequest.model_fields)

    def rank(key: str) -> int:
        top = key.split(".", 1)[0]
        return fields.index(top) if top in fields else -1

    return dict(sorted(details.items(), key=lambda item: rank(item[0])))


def parse_generate_request(body: Any, *, team: Team) -> GenerateRequest:
    """Validate a generate body: the contract's rules, then that its storage names are this team's storages."""
    details: Details = {}
    request = None
    try:
        request = GenerateRequest.parse(body)
    except ValidationFailed as exc:
        details = dict(exc.details)
    if isinstance(body, dict):
        for field in ("input", "output"):
            value = body.get(field)
            if field not in details and isinstance(value, str) and value.startswith(STORAGE_SCHEME):
                try:
                    _storage_named(team=team, uri=value, field=field)
                except ValidationFailed as exc:
                    details.update(exc.details)
    if details or request is None:
        raise validation_failed(_in_field_order(details))
    return request


def generation_create(
    *,
    team: Team,
    request: GenerateRequest,
    user=None,
    api_key: ApiKey | None = None,
    now: datetime | None = None,
    source_name: str = "",
) -> CreateResult:
    """Accept a job: re-check storages, rate windows (429), then credits and cap (402); enqueue after commit."""
    if user is None and api_key is not None:
        user = api_key.created_by
    with transaction.atomic():
        locked = billing.team_lock(team.pk)
        # The clock is read under the lock so accepted rows are ordered like the lock grants.
        now = now or timezone.now()
        if request.input.startswith(STORAGE_SCHEME):
            _storage_named(team=locked, uri=request.input, field="input")
        output_storage, output_key = None, ""
        if request.output is not None:
            output_storage, output_key = _storage_named(team=locked, uri=request.output, field="output")
        choice = engine_choose(team=locked, request=request)

        rate = ratelimit_status(team=locked, now=now)
        if not ratelimit_admits(rate):
            raise RateLimited(
                f"rate limit exceeded: {rate.per_second} per second and {rate.per_minute} per minute; "
                f"retry in {max(1, rate.reset_s)} s",
                rate=rate,
            )

        duration = request.duration
        cost = choice.price_for(duration)
        if locked.balance < cost:
            raise InsufficientCredits(
                f"not enough credits: this needs {cost}, the balance is {locked.balance}",
                cost=cost,
                balance=locked.balance,
            )
        monthly_cap = None
        if user is not None:
            monthly_cap = (
                Membership.objects.filter(team=locked, user=user).values_list("monthly_cap", flat=True).first()
            )
        generation = Generation.objects.create(
            team=locked,
            created_by=user,
            api_key=api_key,
            request=request.echo(),
            duration=duration,
            aspect_ratio=request.output_format.aspect_ratio,
            cost=cost,
            is_temporary=request.output is None,
            output_storage=output_storage,
            output_key=output_key,
            engine=choice.connection,
            engine_info=choice.info,
            created_at=now,
            lease_expires_at=now + timedelta(seconds=queued_stale_s()),
            source_name=source_name[:255],
        )
        billing.credits_hold(team=locked, generation=generation, user=user, monthly_cap=monthly_cap)
        rate = ratelimit_status(team=locked, now=now)
        enqueue_on_commit(RUN_TASK)
    team.balance = locked.balance
    return CreateResult(generation=generation, rate=rate)


def generation_cancel(*, team: Team, generation: Generation) -> Generation:
    """Cancel a job that has not started (or waits upstream) and refund it; Conflict once it runs here."""
    now = timezone.now()
    with transaction.atomic():
        updated = Generation.objects.filter(
            pk=generation.pk,
            team=team,
            status=Status.PROCESSING,
            # A job waiting upstream holds no worker: it can be cancelled, and the cancel is forwarded.
            stage__in=[Stage.QUEUED, Stage.WAITING],
            deleted_at__isnull=True,
        ).update(
            status=Status.CANCELLED,
            stage=Stage.CANCELLED,
            completed_at=now,
            lease_expires_at=None,
            updated_at=now,
        )
        if not updated:
            generation.refresh_from_db()
            if generation.status == Status.CANCELLED:
                return generation
            raise Conflict("the job has already started or finished and can no longer be cancelled")
        billing.credits_refund(generation=generation, reason="cancelled")
    generation.refresh_from_db()
    if generation.engine_info.get("upstream_id"):
        enqueue_on_commit(UPSTREAM_CANCEL_TASK, generation.pk)
    return generation


def generation_retry(*, team: Team, user, generation: Generation, api_key: ApiKey | None = None) -> CreateResult:
    """Submit the same request again as a new, charged and rate-limited generation."""
    request = GenerateRequest.parse(generation.request)
    return generation_create(team=team, request=request, user=user, api_key=api_key, source_name=generation.source_name)


def generation_delete(*, team: Team, user, generation: Generation) -> None:
    """Soft-delete a generation and remove its files; its links die at once.

    Removed: the temporary video and the poster in the default storage, and a storage output
    whose name we generated (a folder output, <dir>/<uuid>.mp4). Kept: an exact-key output
    (storage://s/out/file.mp4); the customer named that object, and a later job may have
    overwritten it. Nothing is removed from a storage that was disconnected.
    """
    if generation.team_id != team.pk:
        raise Forbidden("this generation belongs to another team")
    membership = Membership.objects.filter(team=team, user=user).first() if user is not None else None
    is_creator = user is not None and generation.created_by_id == user.pk
    if not is_creator and (membership is None or not membership.can_manage):
        raise Forbidden("only the creator of a video, an owner or an admin can delete it")
    if generation.status == Status.PROCESSING:
        if generation.stage != Stage.QUEUED:
            raise Conflict("the job is running; delete it once it has finished")
        generation_cancel(team=team, generation=generation)
    now = timezone.now()
    Generation.objects.filter(pk=generation.pk, deleted_at__isnull=True).update(deleted_at=now, updated_at=now)
    default_files_delete(generation.video_name, generation.poster_name)
    if generation.status == Status.DONE:  # a failed job's output was removed when it failed
        folder_output_delete(generation)
    generation.deleted_at = now
