"""Uploads do not pile up: removed with a refunded job, by the hourly purge after the retention, and capped per team."""

from __future__ import annotations

import io
import os
import time

import pytest
from django.urls import reverse
from PIL import Image

from generator.models import Batch, BatchItem, Generation
from generator.services.generations import generation_cancel
from generator.services.submissions import generation_submit
from generator.services.worker import generation_fail
from generator.tasks import purge_task

pytestmark = pytest.mark.django_db

BODY = {"input": "", "options": {"prompt": "slow zoom in", "duration": 5}}
DAY_S = 86_400


def png(color=(10, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 320), color).save(buffer, "PNG")
    return buffer.getvalue()


def uploaded(team, user, color=(10, 120, 200)) -> Generation:
    """A queued job made from a photo uploaded on the Generate form."""
    return generation_submit(team=team, user=user, body=BODY, token=f"t{color}", upload=png(color)).generation


def path_of(settings, team, uri: str):
    return settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "uploads" / uri.removeprefix("storage://uploads/")


def age(path, days: float) -> None:
    then = time.time() - days * DAY_S
    os.utime(path, (then, then))


def test_a_cancelled_jobs_upload_is_deleted(team, member, unlimited, settings, django_capture_on_commit_callbacks):
    generation = uploaded(team, member.user)
    stored = path_of(settings, team, generation.request["input"])
    assert stored.is_file()
    with django_capture_on_commit_callbacks(execute=True):
        generation_cancel(team=team, generation=generation)
    assert not stored.exists()


def test_a_failed_jobs_upload_is_deleted(team, member, unlimited, settings, django_capture_on_commit_callbacks):
    generation = uploaded(team, member.user)
    stored = path_of(settings, team, generation.request["input"])
    with django_capture_on_commit_callbacks(execute=True):
        assert generation_fail(generation_id=generation.pk, reason="the image file is truncated or corrupt")
    assert not stored.exists()


def test_a_refunded_jobs_upload_is_kept_while_another_job_or_a_pending_batch_item_names_it(
    team, member, unlimited, settings, django_capture_on_commit_callbacks
):
    generation = uploaded(team, member.user)
    uri = generation.request["input"]
    twin = Generation.objects.create(team=team, request={**generation.request}, status="PROCESSING")
    with django_capture_on_commit_callbacks(execute=True):
        generation_cancel(team=team, generation=generation)
    assert path_of(settings, team, uri).is_file()  # the twin is still queued
    batch = Batch.objects.create(team=team, options={}, item_count=1)
    BatchItem.objects.create(batch=batch, position=1, input=uri, output_name="a.mp4")
    Generation.objects.filter(pk=twin.pk).update(status="CANCELLED")
    with django_capture_on_commit_callbacks(execute=True):
        generation_fail(generation_id=Generation.objects.create(team=team, request={"input": uri}).pk, reason="x")
    assert path_of(settings, team, uri).is_file()  # the batch item has not been submitted yet


def test_a_batch_jobs_upload_is_kept_for_retry_failed(
    team, member, unlimited, settings, django_capture_on_commit_callbacks
):
    generation = uploaded(team, member.user)
    batch = Batch.objects.create(team=team, options={}, item_count=1)
    BatchItem.objects.create(
        batch=batch,
        position=1,
        input=generation.request["input"],
        output_name="a.mp4",
        state="submitted",
        generation=generation,
    )
    with django_capture_on_commit_callbacks(execute=True):
        generation_fail(generation_id=generation.pk, reason="the image file is truncated or corrupt")
    assert path_of(settings, team, generation.request["input"]).is_file()


def test_hourly_purge_removes_old_uploads_that_nothing_needs(team, member, unlimited, settings):
    settings.GENERATOR_UPLOAD_RETENTION_DAYS = 7
    done = uploaded(team, member.user, (1, 1, 1))
    Generation.objects.filter(pk=done.pk).update(status="DONE")
    queued = uploaded(team, member.user, (2, 2, 2))
    in_batch = uploaded(team, member.user, (3, 3, 3))
    Generation.objects.filter(pk=in_batch.pk).update(status="CANCELLED")
    batch = Batch.objects.create(team=team, options={}, item_count=1)
    BatchItem.objects.create(batch=batch, position=1, input=in_batch.request["input"], output_name="a.mp4")
    fresh = uploaded(team, member.user, (4, 4, 4))
    Generation.objects.filter(pk=fresh.pk).update(status="DONE")
    paths = {
        name: path_of(settings, team, g.request["input"])
        for name, g in [("done", done), ("queued", queued), ("in_batch", in_batch), ("fresh", fresh)]
    }
    for name in ("done", "queued", "in_batch"):
        age(paths[name], 8)
    age(paths["fresh"], 6)
    # A file the service did not write (a team may connect its own storage named "uploads") is never touched.
    theirs = paths["done"].parent.parent / "their-photo.png"
    theirs.write_bytes(png())
    age(theirs, 30)
    assert " uploads=1 " in f" {purge_task()} "
    assert not paths["done"].exists()
    assert paths["queued"].is_file()
    assert paths["in_batch"].is_file()
    assert paths["fresh"].is_file()
    assert theirs.is_file()


def test_an_upload_over_the_teams_quota_is_refused_inline(member_client, team, member, unlimited, settings):
    settings.GENERATOR_UPLOAD_QUOTA_MB = 1
    kept = path_of(settings, team, uploaded(team, member.user).request["input"])
    kept.write_bytes(kept.read_bytes() + b"\0" * (1024 * 1024 - kept.stat().st_size - 100))
    response = member_client.post(
        reverse("generator:generate"),
        {
            "source": "upload",
            "upload": io.BytesIO(png((9, 9, 9))),
            "prompt_mode": "text",
            "prompt": "slow zoom in",
            "duration": "5",
            "guidance_scale": "0.5",
            "output_mode": "temporary",
        },
    )
    assert response.status_code == 302
    html = member_client.get(response["Location"]).content.decode()
    assert "This team&#x27;s upload space is full (1 of 1 MB used)." in html
    assert "removed 7 days after they were uploaded" in html
    assert Generation.objects.filter(team=team).count() == 1
    assert len([p for p in kept.parent.parent.rglob("*") if p.is_file()]) == 1
