"""Generations: accept (hold + rate windows), cancel, retry, delete, and the worker's run.

The Generation row is the truth. The worker owns a job only while its conditional updates
(status PROCESSING and the attempt number it claimed) still match; every write re-checks that,
so a cancelled, reaped or re-claimed job is abandoned at the next write.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from generator.errors import (
    Conflict,
    Forbidden,
    InsufficientCredits,
    JobFailed,
    RateLimited,
    RateLimitStatus,
    ValidationFailed,
)
from generator.models import ApiKey, Generation, Membership, Storage, Team
from generator.schemas import GenerateRequest
from generator.services import billing
from generator.services.queue import enqueue_on_commit
from generator.services.ratelimit import ratelimit_admits, ratelimit_status
from generator.storage.uris import KeyRejected, parse_storage_uri

logger = logging.getLogger(__name__)

RUN_TASK = "generator.tasks.generation_run_task"
# A queued job whose task has not started by then is re-enqueued by the reaper (lost by the broker).
QUEUED_STALE_S = 300
# At most ~2 progress writes a second per job (SQLite, SPEC 10).
PROGRESS_INTERVAL_S = 0.5
POLL_S = 0.25
PROGRESS_FETCHED = 5
PROGRESS_VALIDATED = 15
RENDER_BAND = (20, 95)
PROGRESS_STORING = 95
INTERNAL_ERROR = "internal error while making the video; the credits were refunded"

Status = Generation.Status
Stage = Generation.Stage


@dataclass(frozen=True)
class CreateResult:
    generation: Generation
    rate: RateLimitStatus


def queued_stale_s() -> int:
    return int(getattr(settings, "GENERATOR_QUEUED_STALE_S", QUEUED_STALE_S))


# --- Accept ---------------------------------------------------------------------------------


def _storage_named(*, team: Team, uri: str, field: str) -> tuple[Storage, str]:
    try:
        parsed = parse_storage_uri(uri)
    except KeyRejected as exc:
        raise ValidationFailed(f"{field}: {exc}", details={field: [str(exc)]}) from None
    storage = Storage.objects.filter(team=team, name=parsed.name).first()
    if storage is None:
        message = f"no storage named {parsed.name!r} in this team"
        raise ValidationFailed(f"{field}: {message}", details={field: [message]})
    return storage, parsed.key


def _output_target(*, team: Team, output: str | None) -> tuple[Storage | None, str]:
    if output is None:
        return None, ""
    storage, key = _storage_named(team=team, uri=output, field="output")
    if not (key.endswith("/") or key.endswith(".mp4")):
        message = "output must end in '/' (a folder) or '.mp4' (an object)"
        raise ValidationFailed(f"output: {message}", details={"output": [message]})
    return storage, key


def generation_create(
    *,
    team: Team,
    request: GenerateRequest,
    user=None,
    api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> CreateResult:
    """Accept a job: re-check storages, rate windows (429), then credits and cap (402); enqueue after commit."""
    if user is None and api_key is not None:
        user = api_key.created_by
    with transaction.atomic():
        locked = billing.team_lock(team.pk)
        # The clock is read under the lock so accepted rows are ordered like the lock grants.
        now = now or timezone.now()
        if request.input.startswith("storage://"):
            _storage_named(team=locked, uri=request.input, field="input")
        output_storage, output_key = _output_target(team=locked, output=request.output)

        rate = ratelimit_status(team=locked, now=now)
        if not ratelimit_admits(rate):
            raise RateLimited(
                f"rate limit exceeded: {rate.per_second} per second and {rate.per_minute} per minute; "
                f"retry in {max(1, rate.reset_s)} s",
                rate=rate,
            )

        duration = request.duration
        cost = billing.price_for(duration)
        if locked.balance < cost:
            raise InsufficientCredits(f"not enough credits: this needs {cost}, the balance is {locked.balance}")
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
            cost=cost,
            is_temporary=request.output is None,
            output_storage=output_storage,
            output_key=output_key,
            created_at=now,
            lease_expires_at=now + timedelta(seconds=queued_stale_s()),
        )
        billing.credits_hold(team=locked, generation=generation, user=user, monthly_cap=monthly_cap)
        rate = ratelimit_status(team=locked, now=now)
        enqueue_on_commit(RUN_TASK, generation.pk)
    team.balance = locked.balance
    return CreateResult(generation=generation, rate=rate)


def generation_cancel(*, team: Team, generation: Generation) -> Generation:
    """Cancel a job that has not started and refund it; Conflict once it has."""
    now = timezone.now()
    with transaction.atomic():
        updated = Generation.objects.filter(
            pk=generation.pk,
            team=team,
            status=Status.PROCESSING,
            stage=Stage.QUEUED,
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
    return generation


def generation_retry(*, team: Team, user, generation: Generation, api_key: ApiKey | None = None) -> CreateResult:
    """Submit the same request again as a new, charged and rate-limited generation."""
    body = generation.request
    request = GenerateRequest(
        input=body["input"],
        options=dict(body.get("options", {})),
        output=body.get("output"),
    )
    return generation_create(team=team, request=request, user=user, api_key=api_key)


def _default_names(generation: Generation) -> tuple[str, str]:
    return (
        f"videos/{generation.team.slug}/{generation.uuid}.mp4",
        f"posters/{generation.uuid}.jpg",
    )


def _delete_default_files(*names: str) -> None:
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s from the default storage", name, exc_info=True)


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
    _delete_default_files(generation.video_name, generation.poster_name)
    if generation.status == Status.DONE:  # a failed job's output was removed when it failed
        _delete_folder_output(generation)
    generation.deleted_at = now


# --- Run (the worker) -------------------------------------------------------------------------


class _Lost(Exception):
    """The job is no longer ours (cancelled, reaped or claimed again); stop without writing."""


class _Aborted(Exception):
    """Raised inside the engine's progress callback to stop a render we no longer own."""


def _claim(generation_id: int) -> int | None:
    """Take the job with a conditional update; return our attempt number, or None if not ours."""
    now = timezone.now()
    updated = (
        Generation.objects.filter(
            pk=generation_id,
            status=Status.PROCESSING,
            deleted_at__isnull=True,
            attempts__lt=settings.GENERATOR_MAX_ATTEMPTS,
        )
        .filter(Q(stage=Stage.QUEUED) | Q(lease_expires_at__lt=now))
        .update(
            attempts=F("attempts") + 1,
            stage=Stage.FETCHING,
            progress=0,
            started_at=now,
            lease_expires_at=now + timedelta(seconds=settings.GENERATOR_LEASE_S),
            updated_at=now,
        )
    )
    if not updated:
        return None
    return Generation.objects.filter(pk=generation_id).values_list("attempts", flat=True).first()


class _Job:
    """One claimed attempt: owned writes, the lease heartbeat and throttled progress."""

    def __init__(self, generation_id: int, attempt: int) -> None:
        self.pk = generation_id
        self.attempt = attempt
        self.abort = threading.Event()
        # The latest (done, total) reported by the engine.
        self.frames: tuple[int, int] | None = None
        self.progress = 0
        self.last_write = time.monotonic()

    def owned(self):
        return Generation.objects.filter(pk=self.pk, status=Status.PROCESSING, attempts=self.attempt)

    def update(self, **fields: Any) -> None:
        now = timezone.now()
        fields.setdefault("lease_expires_at", now + timedelta(seconds=settings.GENERATOR_LEASE_S))
        fields["updated_at"] = now
        if not self.owned().update(**fields):
            raise _Lost
        self.last_write = time.monotonic()
        if "progress" in fields:
            self.progress = fields["progress"]

    def stage(self, stage: str, progress: int) -> None:
        self.update(stage=stage, progress=progress)

    def on_frames(self, done: int, total: int) -> None:
        """The engine's progress callback: record only; the supervising thread writes."""
        if self.abort.is_set():
            raise _Aborted
        self.frames = (done, total)

    def _render_progress(self) -> int:
        if self.frames is None:
            return self.progress
        done, total = self.frames
        low, high = RENDER_BAND
        return low + (high - low) * min(done, total) // max(total, 1)

    def _tick(self) -> None:
        elapsed = time.monotonic() - self.last_write
        progress = self._render_progress()
        if (
            progress != self.progress and elapsed >= PROGRESS_INTERVAL_S
        ) or elapsed >= settings.GENERATOR_LEASE_RENEW_S:
            try:
                self.update(progress=progress)
            except _Lost:
                self.abort.set()
            except DatabaseError:
                # A transient database error must not fail the render; the next tick tries
                # again, and if the lease runs out meanwhile the reaper decides.
                logger.warning("generation %s: progress write failed", self.pk, exc_info=True)

    def supervise(self, fn, /, *args: Any, **kwargs: Any) -> Any:
        """Run blocking work in a helper thread while this thread keeps the lease and progress.

        All database writes stay on the calling thread; the helper touches no database.
        """
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # re-raised on the calling thread below
                outcome["error"] = exc

        helper = threading.Thread(target=target, name=f"generation-{self.pk}", daemon=True)
        helper.start()
        while helper.is_alive():
            helper.join(POLL_S)
            if helper.is_alive() and not self.abort.is_set():
                self._tick()
        if self.abort.is_set():
            raise _Lost
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")


def _render_options(options: dict):
    from generator.engine import RenderOptions

    prompt = options.get("prompt")
    text, auto, guidelines = None, False, None
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, dict):
        text = prompt.get("text")
        auto = bool(prompt.get("generate"))
        guidelines = prompt.get("guidelines")
    return RenderOptions(
        prompt=text,
        auto=auto,
        guidelines=guidelines,
        negative_prompt=options.get("negative_prompt"),
        duration=int(options.get("duration", 5)),
        guidance_scale=float(options.get("guidance_scale", 0.5)),
    )


def _fetch_input(job: _Job, generation: Generation) -> bytes:
    source = generation.request["input"]
    max_bytes = settings.GENERATOR_FETCH_MAX_BYTES
    if source.startswith("storage://"):
        from generator.storage.registry import get_connector

        parsed = parse_storage_uri(source)
        storage = Storage.objects.filter(team_id=generation.team_id, name=parsed.name).first()
        if storage is None:
            raise JobFailed(f"the input storage {parsed.name!r} no longer exists")
        connector = get_connector(storage)
        return job.supervise(connector.read, parsed.key, max_bytes=max_bytes)
    from generator.fetch import fetch_image_bytes

    return job.supervise(fetch_image_bytes, source, max_bytes=max_bytes)


def _output_key(generation: Generation) -> str:
    key = generation.output_key
    if key.endswith("/"):
        return f"{key}{generation.uuid.hex}.mp4"
    return key


def _generated_output_key(generation: Generation) -> str | None:
    """Return the storage key of a folder output (a name we made up), or None for an exact key.

    While the job runs output_key is the folder ("out/"); once DONE it is the full key.
    """
    if generation.output_storage_id is None:
        return None
    requested = (generation.request or {}).get("output") or ""
    if not requested.endswith("/"):
        return None
    key = _output_key(generation)
    if not key.endswith(f"/{generation.uuid.hex}.mp4") and key != f"{generation.uuid.hex}.mp4":
        return None
    return key


def _save_default(name: str, path: Path) -> str:
    # FileSystemStorage renames on collision; a retried attempt must land on the same name.
    if default_storage.exists(name):
        default_storage.delete(name)
    with path.open("rb") as handle:
        return default_storage.save(name, File(handle, name=Path(name).name))


def _store(job: _Job, generation: Generation, video: Path, poster: Path) -> dict:
    """Put the poster in the default storage and the video where the request asked."""
    video_default, poster_default = _default_names(generation)
    fields: dict[str, Any] = {"output_object": {"ext": "mp4", "mime": "video/mp4", "format": "mp4"}}
    fields["poster_name"] = job.supervise(_save_default, poster_default, poster)
    if generation.is_temporary:
        fields["video_name"] = job.supervise(_save_default, video_default, video)
        return fields
    from generator.storage.registry import get_connector

    storage = generation.output_storage
    if storage is None:
        raise JobFailed("the output storage was disconnected before the video could be stored")
    connector = get_connector(storage)
    key = _output_key(generation)
    # A failed upload is cleaned up by generation_fail, and only under a name we generated:
    # an exact key may still hold the customer's previous object.
    job.supervise(connector.write_file, key, str(video), content_type="video/mp4")
    described = connector.describe(key)
    fields["output_key"] = key
    fields["output_object"].update(
        object_key=described.get("object_key"),
        object_bucket=described.get("object_bucket"),
        object_uri=described.get("object_uri"),
        claid_storage_uri=f"storage://{storage.name}/{key}",
    )
    return fields


def _user_facing_errors() -> tuple[type[BaseException], ...]:
    from generator.storage.base import StorageError

    known: tuple[type[BaseException], ...] = (JobFailed, StorageError)
    try:
        from generator.engine import ImageRejected

        known += (ImageRejected,)
    except ImportError:
        pass
    try:
        from generator.fetch import FetchError

        known += (FetchError,)
    except ImportError:
        pass
    return known


def _failure_reason(exc: BaseException) -> str:
    known = _user_facing_errors()
    if isinstance(exc, known):
        message = getattr(exc, "message", None) or str(exc)
        return message or exc.__class__.__name__
    return INTERNAL_ERROR


def _notify_finished(generation_id: int) -> None:
    from generator.services.webhooks import webhook_deliver_later

    try:
        webhook_deliver_later(generation_id)
    except DatabaseError:
        # The job's outcome is already committed; a missed webhook must not undo it.
        logger.exception("could not queue the webhook for generation %s", generation_id)


def generation_fail(*, generation_id: int, reason: str, only_if: Q | None = None) -> bool:
    """Move a PROCESSING job to ERROR and refund it once; return False if it was not PROCESSING."""
    now = timezone.now()
    with transaction.atomic():
        qs = Generation.objects.filter(pk=generation_id, status=Status.PROCESSING)
        if only_if is not None:
            qs = qs.filter(only_if)
        updated = qs.update(
            status=Status.ERROR,
            stage=Stage.ERROR,
            errors=[{"error": reason, "created_at": now.isoformat()}],
            completed_at=now,
            lease_expires_at=None,
            updated_at=now,
        )
        if not updated:
            return False
        generation = Generation.objects.select_related("team", "output_storage").get(pk=generation_id)
        billing.credits_refund(generation=generation, reason=reason)
    video, poster = _default_names(generation)
    _delete_default_files(video, poster)
    _delete_folder_output(generation)
    _notify_finished(generation_id)
    return True


def _delete_folder_output(generation: Generation) -> None:
    """Remove the storage object of a folder output (its file name is ours), if there is one.

    Never an exact key: that object is the customer's (a failed upload may not have replaced
    it, and a later job may have overwritten it).
    """
    key = _generated_output_key(generation)
    if key is None:
        return
    from generator.storage.registry import get_connector

    try:
        get_connector(generation.output_storage).delete(key)
    except Exception:
        logger.warning(
            "generation %s: could not remove the output %s",
            generation.pk,
            key,
            exc_info=True,
        )


def generation_run(generation_id: int) -> None:
    """Claim the job, fetch, validate, render and store it; fail with one refund on any error."""
    attempt = _claim(generation_id)
    if attempt is None:
        logger.info(
            "generation %s: not claimable (done, cancelled, running elsewhere or out of attempts)",
            generation_id,
        )
        return
    job = _Job(generation_id, attempt)
    try:
        _run(job)
    except _Lost:
        logger.warning(
            "generation %s: attempt %s lost the job (cancelled, reaped or re-claimed)",
            generation_id,
            attempt,
        )
    except Exception as exc:
        reason = _failure_reason(exc)
        if reason == INTERNAL_ERROR:
            logger.exception("generation %s failed", generation_id)
        else:
            logger.info("generation %s failed: %s", generation_id, reason)
        # Only while this attempt still owns the job: one taken over meanwhile may be writing
        # the same key. generation_fail removes a partial folder output, never an exact key.
        generation_fail(generation_id=generation_id, reason=reason, only_if=Q(attempts=attempt))


def _run(job: _Job) -> None:
    from generator.engine import decode_image, render_video

    generation = Generation.objects.select_related("team", "output_storage").get(pk=job.pk)
    data = _fetch_input(job, generation)

    job.stage(Stage.VALIDATING, PROGRESS_FETCHED)
    image = job.supervise(decode_image, data, max_pixels=settings.GENERATOR_MAX_PIXELS)
    del data
    input_object = {
        "ext": image.ext,
        "mps": round(image.width * image.height / 1_000_000, 2),
        "mime": image.mime,
        "format": image.format,
        "width": image.width,
        "height": image.height,
    }
    job.update(stage=Stage.RENDERING, progress=PROGRESS_VALIDATED, input_object=input_object)

    with tempfile.TemporaryDirectory(prefix="generation-") as workdir:
        video = Path(workdir) / "video.mp4"
        poster = Path(workdir) / "poster.jpg"
        result = job.supervise(
            render_video,
            image.pixels,
            _render_options(generation.request.get("options", {})),
            video_path=str(video),
            poster_path=str(poster),
            progress=job.on_frames,
            source_size=(image.width, image.height),
        )
        del image
        if result.generated_prompt:
            input_object["generated_prompt"] = result.generated_prompt
        job.stage(Stage.STORING, PROGRESS_STORING)
        fields = _store(job, generation, video, poster)

    now = timezone.now()
    job.update(
        status=Status.DONE,
        stage=Stage.DONE,
        progress=100,
        input_object=input_object,
        generated_prompt=result.generated_prompt or "",
        plan=result.plan or {},
        completed_at=now,
        lease_expires_at=None,
        errors=[],
        **fields,
    )
    _notify_finished(job.pk)
