"""Jobs on upstream engines: submit once, then the ticker's short poll tasks, download, remux, store (docs/engines.md).

A worker never waits on an upstream. It fetches and validates the photo (services/worker.py),
submits it here, records the upstream id in the same write as the `waiting` stage and returns.
The ticker's finder hands due jobs to poll tasks, many jobs a task; each look is one short
call, then the job's next look is booked (first within 5 s, backing off to 30 s). A poll task
that dies is harmless: the claim books a look two minutes on, so the job is looked at again,
never submitted again.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from generator.engine.remux import VideoRejected, remux_video
from generator.errors import JobFailed
from generator.fetch import FetchError, fetch_image_bytes
from generator.models import EngineConnection, Generation
from generator.services.engine_connections import connection_of
from generator.services.queue import enqueue_on_commit
from generator.services.storage_connections import scrub
from generator.services.upstream_handover import handover_image_url, input_forget, input_keep
from generator.services.worker import _Job, _notify_finished, _store, generation_fail
from generator.storage.base import StorageError
from generator.upstream.base import Submitted, UpstreamError
from generator.upstream.registry import get_provider

logger = logging.getLogger(__name__)

POLL_TASK = "generator.tasks.upstream_poll_task"
POLLS_PER_TASK = 25
CLAIM_S = 120
FIRST_LOOK_S = 2.0
LONGEST_LOOK_S = 30.0
# Each wait between looks is this much longer than the one before: looks 2, 5, 9.5, 16, 26, 42, 64 s
# after the submit, then every 30 s. Doubling (2, 6, 14, 30, 60 s) saw a 20 s job only at 30 s and
# a 35 s one at 60 s; this sees them at 26 and 42 s for one more look (bench/upstream.py).
LOOK_GROWTH = 1.5
TRANSIENT_FOR_S = 600
PROGRESS_SUBMITTED = 25
PROGRESS_DOWNLOADING = 85
PROGRESS_STORING = 95

Status = Generation.Status
Stage = Generation.Stage


def _secrets_of(generation: Generation) -> dict:
    from generator.crypto import decrypt_json

    return decrypt_json(generation.engine.secrets_encrypted) if generation.engine else {}


def upstream_submit(job: _Job, generation: Generation, input_object: dict, data: bytes) -> None:
    """Hand a validated job to the ticker at `submitting` and try the submit now (once, under the rate windows).

    From here on the job holds no lease: the ticker owns it. A submit that must wait (the
    connection's rate window, a 429, a 5xx) is booked again, never failed; a worker killed
    mid-submit leaves it booked CLAIM_S on, and the Idempotency-Key (the job's uuid) makes a
    repeated submit the same upstream job.
    """
    if generation.engine is None:
        raise JobFailed("the engine connection was disconnected before the job could be submitted")
    input_keep(generation, data)
    job.update(
        stage=Stage.SUBMITTING,
        progress=PROGRESS_SUBMITTED - 5,
        input_object=input_object,
        generated_prompt=input_object.get("generated_prompt", ""),
        lease_expires_at=None,
        next_poll_at=timezone.now() + timedelta(seconds=CLAIM_S),
    )
    generation.refresh_from_db()
    _submit(generation)


def _rate_wait(generation: Generation, now: datetime) -> float:
    """Admit this submit under the connection's windows (shared by every worker: a row lock) or return the wait."""
    engine = generation.engine
    assert engine is not None
    rate = get_provider(engine.type).capabilities(connection_of(engine, secrets={})).rate
    if rate is None:
        return 0.0
    per_second, per_minute = rate
    with transaction.atomic():
        EngineConnection.objects.select_for_update().filter(pk=engine.pk).first()
        recent: list[datetime] = [
            moment
            for moment in Generation.objects.filter(engine=engine, submitted_at__gt=now - timedelta(seconds=60))
            .exclude(pk=generation.pk)
            .order_by("submitted_at")
            .values_list("submitted_at", flat=True)
            if moment is not None
        ]
        last_second = [moment for moment in recent if moment > now - timedelta(seconds=1)]
        if len(last_second) >= per_second:
            return max(0.05, (last_second[-per_second] + timedelta(seconds=1) - now).total_seconds())
        if len(recent) >= per_minute:
            return max(0.05, (recent[-per_minute] + timedelta(seconds=60) - now).total_seconds())
        Generation.objects.filter(pk=generation.pk).update(submitted_at=now)
    return 0.0


def _upstream_options(generation: Generation) -> dict:
    """The request's options as the upstream gets them: an automatic prompt becomes the text the worker wrote.

    Only for upstreams without their own automatic prompt (Capabilities.auto_prompt): the worker
    writes none for the others, so Claid gets {"generate": true} as it was sent.
    """
    options = dict(generation.request.get("options", {}))
    prompt = options.get("prompt")
    if isinstance(prompt, dict) and prompt.get("generate") and generation.generated_prompt:
        options["prompt"] = generation.generated_prompt
    return options


def _submit(generation: Generation) -> None:
    engine = generation.engine
    assert engine is not None
    now = timezone.now()
    wait = _rate_wait(generation, now)
    if wait:
        _book(generation, after_s=wait)
        return
    from generator.services.upstream_webhooks import upstream_webhook_url

    provider, connection = get_provider(engine.type), connection_of(engine)
    caps = provider.capabilities(connection)
    try:
        image_url = handover_image_url(generation, caps)
    except (JobFailed, StorageError) as exc:
        _fail(generation, str(exc))
        return
    try:
        submitted = provider.submit(
            connection,
            image_url=image_url,
            options=_upstream_options(generation),
            idempotency_key=str(generation.uuid),
            webhook_url=upstream_webhook_url(generation) if caps.webhooks else "",
        )
    except UpstreamError as exc:
        _upstream_trouble(generation, exc, now=now, refused="the upstream refused the job")
        return
    now = timezone.now()
    Generation.objects.filter(
        pk=generation.pk, status=Status.PROCESSING, stage=Stage.SUBMITTING, attempts=generation.attempts
    ).update(
        stage=Stage.WAITING,
        progress=PROGRESS_SUBMITTED,
        engine_info={**generation.engine_info, "upstream_id": submitted.upstream_id},
        upstream_state={**submitted.state, "submitted_at": now.isoformat(), "looks": 0},
        next_poll_at=now + timedelta(seconds=FIRST_LOOK_S),
        updated_at=now,
    )


def _upstream_trouble(generation: Generation, exc: UpstreamError, *, now: datetime, refused: str) -> None:
    """A 429 waits Retry-After; a 5xx/timeout backs off for up to TRANSIENT_FOR_S; anything else fails the job."""
    state = generation.upstream_state or {}
    if exc.retry_after is not None:
        _book(generation, after_s=exc.retry_after)
    elif exc.transient:
        first = parse_datetime(state.get("failing_since", "")) or now
        if (now - first).total_seconds() > TRANSIENT_FOR_S:
            _fail(generation, f"the upstream kept failing for {TRANSIENT_FOR_S // 60} minutes: {exc.message}")
        else:
            errors = int(state.get("errors", 0)) + 1
            _book(
                generation,
                after_s=min(LONGEST_LOOK_S, 2.0**errors),
                failing_since=first.isoformat(),
                errors=errors,
            )
    else:
        _fail(generation, f"{refused}: {exc.message}")


def upstream_polls_due(*, now: datetime) -> int:
    """The ticker's finder: claim jobs whose next look is due and hand them to poll tasks, many a task."""
    due = list(
        Generation.objects.filter(status=Status.PROCESSING, next_poll_at__lte=now)
        .order_by("next_poll_at")
        .values_list("pk", "next_poll_at")[:1000]
    )
    claimed = [
        pk
        for pk, booked in due
        if Generation.objects.filter(pk=pk, status=Status.PROCESSING, next_poll_at=booked).update(
            next_poll_at=now + timedelta(seconds=CLAIM_S)
        )
    ]
    for start in range(0, len(claimed), POLLS_PER_TASK):
        enqueue_on_commit(POLL_TASK, ",".join(str(pk) for pk in claimed[start : start + POLLS_PER_TASK]))
    return len(claimed)


def upstream_poll(pks: list[int]) -> None:
    """Look once at each job upstream; one job's failure never stops the others.

    Logs the task's CPU time (bench/upstream.py adds these up: what keeping jobs waiting costs).
    """
    started = time.process_time()
    for pk in pks:
        try:
            _look(pk)
        except Exception:
            logger.exception("generation %s: upstream look failed", pk)
    logger.info("upstream poll of %d jobs: %.1f ms CPU", len(pks), (time.process_time() - started) * 1000)


def _book(generation: Generation, *, after_s: float, **state) -> None:
    Generation.objects.filter(pk=generation.pk, status=Status.PROCESSING, attempts=generation.attempts).update(
        next_poll_at=timezone.now() + timedelta(seconds=after_s),
        upstream_state={**generation.upstream_state, **state},
        updated_at=timezone.now(),
    )


def _fail(generation: Generation, reason: str) -> None:
    reason = scrub(reason, _secrets_of(generation))
    generation_fail(generation_id=generation.pk, reason=reason, only_if=Q(attempts=generation.attempts))


def _look(pk: int) -> None:
    generation = Generation.objects.select_related("team", "engine", "output_storage").filter(pk=pk).first()
    if generation is None or generation.status != Status.PROCESSING:
        return
    if generation.stage == Stage.SUBMITTING:
        if generation.engine is None:
            _fail(generation, "the engine connection was disconnected before the job could be submitted")
        else:
            _submit(generation)
        return
    if generation.stage not in {Stage.WAITING, Stage.DOWNLOADING}:
        return
    engine = generation.engine
    if engine is None:
        _fail(generation, "the engine connection was disconnected while the job was waiting")
        return
    state = generation.upstream_state or {}
    provider = get_provider(engine.type)
    connection = connection_of(engine)
    submitted = Submitted(upstream_id=str(generation.engine_info.get("upstream_id", "")), state=state)
    now = timezone.now()
    submitted_at = parse_datetime(state.get("submitted_at", "")) or now
    if (now - submitted_at).total_seconds() > settings.GENERATOR_UPSTREAM_DEADLINE_S:
        with contextlib.suppress(UpstreamError):  # cancelled where the API allows; the job ends either way
            provider.cancel(connection, submitted)
        _fail(generation, f"the upstream did not finish within {settings.GENERATOR_UPSTREAM_DEADLINE_S} s")
        return
    try:
        polled = provider.poll(connection, submitted)
    except UpstreamError as exc:
        _upstream_trouble(generation, exc, now=now, refused="the upstream refused the job")
        return
    if polled.status == "failed":
        _fail(generation, f"the upstream failed: {polled.error}")
        return
    if polled.status == "running":
        looks = int(state.get("looks", 0)) + 1
        _book(
            generation,
            after_s=min(LONGEST_LOOK_S, FIRST_LOOK_S * LOOK_GROWTH**looks),
            looks=looks,
            detail=polled.detail,
            failing_since="",
            errors=0,
        )
        return
    _download_and_store(generation, polled.result_url)


def _download_and_store(generation: Generation, result_url: str) -> None:
    started = time.process_time()
    job = _Job(generation.pk, generation.attempts)
    job.update(stage=Stage.DOWNLOADING, progress=PROGRESS_DOWNLOADING, lease_expires_at=None)
    try:
        data = job.supervise(fetch_image_bytes, result_url, max_bytes=settings.GENERATOR_RESULT_MAX_BYTES)
    except FetchError as exc:
        _fail(generation, f"the upstream's result could not be downloaded: {exc}")
        return
    with tempfile.TemporaryDirectory(prefix="upstream-") as workdir:
        source = Path(workdir) / "upstream.bin"
        source.write_bytes(data)
        del data
        video, poster = Path(workdir) / "video.mp4", Path(workdir) / "poster.jpg"
        try:
            job.supervise(
                remux_video,
                str(source),
                video_path=str(video),
                poster_path=str(poster),
                expected_s=float(generation.duration),
            )
        except VideoRejected as exc:
            _fail(generation, str(exc))
            return
        job.update(stage=Stage.STORING, progress=PROGRESS_STORING, lease_expires_at=None)
        fields = _store(job, generation, video, poster)
    job.update(
        status=Status.DONE,
        stage=Stage.DONE,
        progress=100,
        completed_at=timezone.now(),
        lease_expires_at=None,
        next_poll_at=None,
        errors=[],
        **fields,
    )
    logger.info(
        "generation %s: the upstream's video stored: %.1f ms CPU", generation.pk, (time.process_time() - started) * 1000
    )
    input_forget(generation)
    _notify_finished(generation.pk)


def upstream_cancel(generation_id: int) -> None:
    """Ask the upstream to cancel a job cancelled here while it waited (where its API allows)."""
    generation = Generation.objects.select_related("engine").filter(pk=generation_id).first()
    if generation is None or generation.status != Status.CANCELLED:
        return
    input_forget(generation)
    if generation.engine is None:
        return
    submitted = Submitted(
        upstream_id=str(generation.engine_info.get("upstream_id", "")), state=generation.upstream_state or {}
    )
    try:
        get_provider(generation.engine.type).cancel(connection_of(generation.engine), submitted)
    except UpstreamError as exc:
        logger.info("generation %s: the upstream did not cancel: %s", generation_id, exc.message)
