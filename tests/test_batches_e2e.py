"""Batches end to end with the real worker: a 200-item folder batch on a controlled clock through to its CSV
and ZIP, credits running out and a grant finishing it, and a real cluster killed mid-batch (slow)."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from pathlib import Path

import av
import pytest
from django.utils import timezone

from generator.models import BatchItem, CreditLedger, Generation
from generator.services import billing
from generator.services.batch_exports import batch_archive_chunks, batch_csv_chunks
from generator.services.batches import batch_create, batches_dispatch
from generator.services.worker import generation_run_next
from tests.factories import make_team
from tests.harness import (
    ROOT,
    SHORT_LEASES,
    kill_cluster,
    manage,
    manage_shell,
    project_env,
    sqlite_rows,
    start_cluster,
    wait_for,
)
from tests.test_batches import Clock, photo_folder

pytestmark = pytest.mark.slow
OPTIONS = {"prompt": "slow zoom in", "duration": 5}


def dispatch_and_run(clock: Clock, *, seconds: int) -> None:
    """Let `seconds` pass on the clock: each second the dispatcher submits and the worker runs the queue."""
    for _ in range(seconds):
        batches_dispatch(now=clock.now, clock=clock)
        run_queue()
        clock.advance(1)


def run_queue() -> int:
    ran = 0
    while generation_run_next() is not None:
        ran += 1
    return ran


@pytest.mark.django_db
def test_a_200_item_folder_batch_runs_through_at_the_team_rate_to_its_csv_and_zip(settings):
    team = make_team(credits=200 * 35)
    photo_folder(settings, team, files=[f"p{index:03}.png" for index in range(200)])
    batch = batch_create(team=team, body={"input_folder": "storage://in/", "options": OPTIONS})
    clock = Clock(timezone.now())
    start = clock.now
    for _ in range(14 * 60):
        batches_dispatch(now=clock.now, clock=clock)
        run_queue()  # the worker keeps up: each submitted item is made before the next second
        clock.advance(1)
    batches_dispatch(now=clock.now, clock=clock)
    batch.refresh_from_db()
    assert batch.state == "done"
    created = sorted(Generation.objects.filter(team=team).values_list("created_at", flat=True))
    assert [(moment - start).total_seconds() for moment in created] == [
        minute * 60 + second for minute in range(14) for second in range(15)
    ][:200]
    assert CreditLedger.objects.filter(team=team, kind="hold").count() == 200
    assert not CreditLedger.objects.filter(team=team, kind="refund").exists()
    assert Generation.objects.filter(team=team, status="DONE").count() == 200

    rows = list(csv.DictReader(io.StringIO(b"".join(batch_csv_chunks(batch)).decode())))
    assert [row["input"] for row in rows] == [f"storage://in/p{index:03}.png" for index in range(200)]
    assert {row["status"] for row in rows} == {"DONE"}
    assert all(row["link"] for row in rows)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(batch_archive_chunks(batch))))
    assert archive.namelist() == [f"p{index:03}.mp4" for index in range(200)]
    for name in archive.namelist():
        with av.open(io.BytesIO(archive.read(name))) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.frames) == ("h264", 150)


@pytest.mark.django_db
def test_credits_running_out_at_item_30_then_a_grant_finish_it_with_real_videos(settings):
    team = make_team(credits=30 * 35, rate_per_second=100, rate_per_minute=1000)
    photo_folder(settings, team, files=[f"p{index:02}.png" for index in range(32)])
    batch = batch_create(team=team, body={"input_folder": "storage://in/", "options": OPTIONS})
    clock = Clock(timezone.now())
    dispatch_and_run(clock, seconds=3)
    batch.refresh_from_db()
    assert batch.state == "waiting_for_credits"
    assert Generation.objects.filter(team=team, status="DONE").count() == 30
    assert BatchItem.objects.filter(batch=batch, state="pending").count() == 2
    billing.credits_grant(team=team, amount=100, reason="top-up")
    dispatch_and_run(clock, seconds=3)
    batch.refresh_from_db()
    assert batch.state == "done"
    assert Generation.objects.filter(team=team, status="DONE").count() == 32
    assert CreditLedger.objects.filter(team=team, kind="hold").count() == 32
    team.refresh_from_db()
    assert team.balance == 100 - 2 * 35


# --- a real cluster killed in the middle of a batch ----------------------------------------------------

SETUP = """
from pathlib import Path
from PIL import Image
from django.conf import settings
from generator.models import Storage, Team
from generator.services.billing import credits_grant
from generator.services.batches import batch_create
team = Team.objects.create(name="Kill", slug="kill", rate_per_second=100, rate_per_minute=1000)
credits_grant(team=team, amount=1000, reason="test")
folder = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / "kill" / "in"
folder.mkdir(parents=True)
image = Image.open("{fixture}").convert("RGB")
for index in range(3):
    image.save(folder / f"photo{{index}}.png")
Storage.objects.create(team=team, name="in", type="local", parameters={{"path": "in"}})
batch = batch_create(team=team, body={{"input_folder": "storage://in/", "options": {{"prompt": "slow zoom in", "duration": 5}}}})
print(batch.pk)
"""


def _query(db: Path, sql: str, *args) -> list[tuple]:
    return [tuple(row.values()) for row in sqlite_rows(db, sql, *args)]


def test_a_worker_killed_mid_batch_ends_every_item_once_and_charges_none_twice(tmp_path):
    # The dead cluster's broker had taken the other items' slots too; the reaper sends new ones for
    # jobs queued longer than GENERATOR_QUEUED_STALE_S, instead of the broker's redelivery minutes later.
    env = project_env(tmp_path, **SHORT_LEASES, GENERATOR_QUEUED_STALE_S="10")
    db = tmp_path / "db.sqlite3"
    manage(env, "migrate", "-v", "0")
    batch_id = int(manage_shell(env, SETUP.format(fixture=ROOT / "tests" / "fixtures" / "astronaut.png")))

    cluster = start_cluster(env)  # its ticker dispatches the batch, its worker renders
    try:
        assert wait_for(
            lambda: (
                _query(db, "SELECT count(*) FROM generator_generation WHERE stage='rendering' AND progress > 25")[0][0]
                == 1
            ),
            180,
        )
    finally:
        kill_cluster(cluster)
    killed = _query(db, "SELECT id FROM generator_generation WHERE status='PROCESSING' AND stage != 'queued'")
    assert len(killed) == 1
    time.sleep(10.5)  # the lease runs out, and the items still queued count as lost
    reaped = manage_shell(env, "from generator.tasks import reap_task; print(reap_task())")
    assert "requeued=1" in reaped, reaped
    cluster = start_cluster(env)
    try:
        assert wait_for(
            lambda: _query(db, "SELECT state FROM generator_batch WHERE id = ?", batch_id)[0][0] == "done", 300
        )
    finally:
        kill_cluster(cluster)
    items = _query(
        db, "SELECT state, generation_id FROM generator_batchitem WHERE batch_id = ? ORDER BY position", batch_id
    )
    assert [state for state, _ in items] == ["submitted"] * 3
    generations = _query(db, "SELECT id, status, attempts FROM generator_generation ORDER BY id")
    assert sorted(generation_id for _, generation_id in items) == [row[0] for row in generations]
    assert {row[1] for row in generations} == {"DONE"}
    assert {row[0]: row[2] for row in generations}[killed[0][0]] == 2
    holds = _query(
        db, "SELECT generation_id, count(*) FROM generator_creditledger WHERE kind='hold' GROUP BY generation_id"
    )
    assert sorted(holds) == sorted((row[0], 1) for row in generations)
    assert _query(db, "SELECT count(*) FROM generator_creditledger WHERE kind='refund'")[0][0] == 0
    assert _query(db, "SELECT balance FROM generator_team WHERE slug='kill'")[0][0] == 1000 - 3 * 35
    for (name,) in _query(db, "SELECT video_name FROM generator_generation"):
        with av.open(str(tmp_path / "media" / name)) as container:
            assert container.streams.video[0].frames == 150
