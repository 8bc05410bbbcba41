"""Running work: the worker claims a generation, keeps its lease, runs the stages and stores the video.

The Generation row is the truth. The worker owns a job only while its conditional updates
(status PROCESSING and the attempt number it claimed) still match; every write re-checks that,
so a cancelled, reaped or re-claimed job is abandoned at the next write.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from generator.engine import Format, HandedPhoto, ImageRejected, RenderOptions, decode_image, make_plan, render_video
from generator.engine.plan import describe
from generator.errors import JobFailed
from generator.fetch import FetchError, fetch_image_bytes
from generator.models import Generation, Storage
from generator.services import billing, webhooks
from generator.services.claims import generation_claim, generation_claim_next
from generator.services.engine_connections import capabilities
from generator.services.generation_files import (
    default_files_delete,
    default_names,
    folder_output_delete,
    kept_input_name,
    output_key,
)
from generator.storage.base import StorageError
from generator.storage.registry import get_connector
from generator.storage.uris import parse_storage_uri

logger = logging.getLogger(__name__)

# At most ~2 progress writes a second per job, so SQLite is never "locked" (docs/jobs.md).
PROGRESS_INTERVAL_S = 0.5
POLL_S = 0.25
PROGRESS_FETCHED = 5
PROGRESS_VALIDATED = 15
RENDER_BAND = (20, 95)
PROGRESS_STORING = 95
INTERNAL_ERROR = "internal error while making the video; the credits were refunded"
# Errors whose message is safe and useful to show as the job's reason; anything else is a bug.
USER_FACING_ERRORS: tuple[type[BaseException], ...] = (JobFailed, StorageError, ImageRejected, FetchError)

Status = Generation.Status
Stage = Generation.Stage


class _Lost(Exception):
    """The job is no longer ours (cancelled, reaped or claimed again); stop without writing."""


class _Aborted(Exception):
    """Raised inside the engine's progress callback to stop a render we no longer own."""


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


_FORMAT_KEYS = ("aspect_ratio", "resolution", "loop", "background")


def _format(options: dict) -> Format | None:
    """The format options, echoed as a group (docs/formats.md); None when the request sent none."""
    if not any(options.get(key) is not None for key in _FORMAT_KEYS):
        return None
    defaults = Format()
    return Format(
        aspect_ratio=options.get("aspect_ratio") or defaults.aspect_ratio,
        resolution=options.get("resolution") or defaults.resolution,
        loop=bool(options.get("loop", defaults.loop)),
        background=options.get("background") or defaults.background,
    )


def _render_options(options: dict) -> RenderOptions:
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
        format=_format(options),
    )


def _fetch_input(job: _Job, generation: Generation) -> bytes:
    source = generation.request["input"]
    max_bytes = settings.GENERATOR_FETCH_MAX_BYTES
    if source.startswith("storage://"):
        parsed = parse_storage_uri(source)
        storage = Storage.objects.filter(team_id=generation.team_id, name=parsed.name).first()
        if storage is None:
            raise JobFailed(f"the input storage {parsed.name!r} no longer exists")
        connector = get_connector(storage)
        return job.supervise(connector.read, parsed.key, max_bytes=max_bytes)
    return job.supervise(fetch_image_bytes, source, max_bytes=max_bytes)


def _save_default(name: str, path: Path) -> str:
    # FileSystemStorage renames on collision; a retried attempt must land on the same name.
    if default_storage.exists(name):
        default_storage.delete(name)
    with path.open("rb") as handle:
        return default_storage.save(name, File(handle, name=Path(name).name))


def _store(job: _Job, generation: Generation, video: Path, poster: Path) -> dict:
    """Put the poster in the default storage and the video where the request asked."""
    video_default, poster_default = default_names(generation)
    fields: dict[str, Any] = {"output_object": {"ext": "mp4", "mime": "video/mp4", "format": "mp4"}}
    fields["poster_name"] = job.supervise(_save_default, poster_default, poster)
    if generation.is_temporary:
        fields["video_name"] = job.supervise(_save_default, video_default, video)
        return fields
    storage = generation.output_storage
    if storage is None:
        raise JobFailed("the output storage was disconnected before the video could be stored")
    connector = get_connector(storage)
    key = output_key(generation)
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


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, USER_FACING_ERRORS):
        message = getattr(exc, "message", None) or str(exc)
        return message or exc.__class__.__name__
    return INTERNAL_ERROR


def _notify_finished(generation_id: int) -> None:
    try:
        webhooks.webhook_deliver_later(generation_id)
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
    default_files_delete(*default_names(generation), kept_input_name(generation))
    folder_output_delete(generation)
    _notify_finished(generation_id)
    return True


def generation_run(generation_id: int) -> None:
    """Claim this job, fetch, validate, render and store it; fail with one refund on any error."""
    attempt = generation_claim(generation_id)
    if attempt is None:
        logger.info(
            "generation %s: not claimable (done, cancelled, running elsewhere or out of attempts)",
            generation_id,
        )
        return
    _run_claimed(generation_id, attempt)


def generation_run_next() -> int | None:
    """Claim the next job in the fair rotation between teams and run it; return its pk, or None if none was queued."""
    claimed = generation_claim_next()
    if claimed is None:
        return None
    _run_claimed(*claimed)
    return claimed[0]


def _run_claimed(generation_id: int, attempt: int) -> None:
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
    generation = Generation.objects.select_related("team", "output_storage", "engine").get(pk=job.pk)
    data = _fetch_input(job, generation)

    job.stage(Stage.VALIDATING, PROGRESS_FETCHED)
    options = _render_options(generation.request.get("options", {}))
    shape = options.format or Format()
    image = job.supervise(
        decode_image,
        data,
        max_pixels=settings.GENERATOR_MAX_PIXELS,
        aspect_ratio=shape.aspect_ratio,
        resolution=shape.resolution,
    )
    input_object = {
        "ext": image.ext,
        "mps": round(image.width * image.height / 1_000_000, 2),
        "mime": image.mime,
        "format": image.format,
        "width": image.width,
        "height": image.height,
    }
    if generation.engine_id is not None:
        from generator.services.upstream_jobs import upstream_submit

        if options.auto and not capabilities(generation.engine).auto_prompt:
            # An automatic prompt is written here, from the photo, as for builtin; the upstream gets its text.
            plan, _ = job.supervise(make_plan, image.pixels, options)
            input_object["generated_prompt"] = describe(plan)
        upstream_submit(job, generation, input_object, data)
        return
    del data
    job.update(stage=Stage.RENDERING, progress=PROGRESS_VALIDATED, input_object=input_object)

    with tempfile.TemporaryDirectory(prefix="generation-") as workdir:
        video = Path(workdir) / "video.mp4"
        poster = Path(workdir) / "poster.jpg"
        # The engine lets go of the photo once it has drawn what it needs from it (HandedPhoto).
        photo, source_size = HandedPhoto(image.pixels), (image.width, image.height)
        del image
        result = job.supervise(
            render_video,
            photo,
            options,
            video_path=str(video),
            poster_path=str(poster),
            progress=job.on_frames,
            source_size=source_size,
        )
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
        plan=result.plan.to_json(),
        completed_at=now,
        lease_expires_at=None,
        errors=[],
        **fields,
    )
    _notify_finished(job.pk)
