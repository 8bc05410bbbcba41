from __future__ import annotations

import io
import shutil
import socket
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import av
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from generator.contract.generate import GenerateRequest
from generator.models import CreditLedger, Generation, Storage
from generator.services.generations import generation_create
from generator.services.reaper import generations_reap
from generator.services.worker import generation_run
from tests.factories import CHELSEA_INPUT, make_team, png_header_only
from tests.harness import SHORT_LEASES, kill_cluster, manage, manage_shell, project_env, start_cluster, wait_for
from tests.loopback import Route

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OPTIONS = {"prompt": "slow zoom in", "duration": 5, "guidance_scale": 0.5}


def png_bytes(size: tuple[int, int] | None = None, name: str = "chelsea.png") -> bytes:
    with Image.open(FIXTURES / name) as img:
        img = img.convert("RGB")
        if size:
            img = img.resize(size)
        out = io.BytesIO()
        img.save(out, format="PNG")
        return out.getvalue()


def submit(team, *, input: str, output: str | None = None) -> Generation:
    request = GenerateRequest(input=input, options=dict(OPTIONS), output=output)
    return generation_create(team=team, request=request).generation


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {
            "frames": frames,
            "duration": round(float(container.duration / av.time_base), 2),
            "size": (stream.codec_context.width, stream.codec_context.height),
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
        }


def media_files(settings) -> list[str]:
    return sorted(str(p.relative_to(settings.MEDIA_ROOT)) for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())


def ledger(generation) -> list[tuple[str, int]]:
    return list(CreditLedger.objects.filter(generation=generation).order_by("pk").values_list("kind", "amount"))


@pytest.mark.django_db
def test_url_job_ends_done_with_a_real_mp4_and_poster(loopback, settings):
    loopback.routes["/chelsea.png"] = Route(body=png_bytes(), headers={"Content-Type": "image/png"})
    team = make_team(credits=100)
    generation = submit(team, input=loopback.url("/chelsea.png"))
    with CaptureQueriesContext(connection) as queries:
        started = time.monotonic()
        generation_run(generation.pk)
        elapsed = time.monotonic() - started
    generation.refresh_from_db()
    assert generation.status == "DONE", generation.errors
    assert (
        generation.stage,
        generation.progress,
        generation.attempts,
        generation.errors,
    ) == ("done", 100, 1, [])
    assert generation.input_object == CHELSEA_INPUT
    assert generation.output_object == {
        "ext": "mp4",
        "mime": "video/mp4",
        "format": "mp4",
    }
    assert generation.video_name == f"videos/{team.slug}/{generation.uuid}.mp4"
    assert generation.poster_name == f"posters/{generation.uuid}.jpg"
    assert generation.completed_at is not None
    assert generation.lease_expires_at is None
    video = probe(settings.MEDIA_ROOT / generation.video_name)
    assert video == {
        "frames": 150,
        "duration": 5.0,
        "size": (902, 600),
        "codec": "h264",
        "pix_fmt": "yuv420p",
    }
    with Image.open(settings.MEDIA_ROOT / generation.poster_name) as poster:
        assert (poster.format, poster.size) == ("JPEG", (902, 600))
    assert ledger(generation) == [("hold", -35)]
    # Progress writes are throttled (about 2 a second per job: docs/jobs.md).
    writes = [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "generator_generation"')]
    assert len(writes) <= 2 * elapsed + 8


@pytest.mark.django_db
def test_running_a_finished_job_again_changes_nothing(loopback, settings):
    loopback.routes["/c.png"] = Route(body=png_bytes(), headers={"Content-Type": "image/png"})
    team = make_team(credits=100)
    generation = submit(team, input=loopback.url("/c.png"))
    generation_run(generation.pk)
    generation.refresh_from_db()
    finished = (generation.status, generation.attempts, generation.completed_at)
    generation_run(generation.pk)
    generation.refresh_from_db()
    assert (generation.status, generation.attempts, generation.completed_at) == finished
    assert ledger(generation) == [("hold", -35)]


@pytest.mark.django_db
def test_storage_input_and_folder_output_fill_output_object(settings):
    team = make_team(credits=100)
    Storage.objects.create(team=team, name="shop", type="local", parameters={"path": "shop"})
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "shop" / "in"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "coffee.png", folder / "coffee.png")
    generation = submit(team, input="storage://shop/in/coffee.png", output="storage://shop/out/")
    generation_run(generation.pk)
    generation.refresh_from_db()
    assert generation.status == "DONE", generation.errors
    key = f"out/{generation.uuid.hex}.mp4"
    assert generation.output_object == {
        "ext": "mp4",
        "mime": "video/mp4",
        "format": "mp4",
        "object_key": f"shop/{key}",
        "object_bucket": team.slug,
        "object_uri": f"local://{team.slug}/shop/{key}",
        "claid_storage_uri": f"storage://shop/{key}",
    }
    written = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "shop" / key
    assert probe(written)["size"] == (1200, 800)
    assert generation.video_name == ""
    assert media_files(settings) == [f"posters/{generation.uuid}.jpg"]


@pytest.mark.django_db
def test_exact_key_output_overwrites_that_object(settings):
    team = make_team(credits=100)
    Storage.objects.create(team=team, name="shop", type="local", parameters={"path": ""})
    (settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug).mkdir()
    shutil.copy(
        FIXTURES / "chelsea.png",
        settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "cat.png",
    )
    target = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "videos" / "cat.mp4"
    target.parent.mkdir()
    target.write_bytes(b"old")
    generation = submit(team, input="storage://shop/cat.png", output="storage://shop/videos/cat.mp4")
    generation_run(generation.pk)
    generation.refresh_from_db()
    assert generation.status == "DONE", generation.errors
    assert generation.output_object["claid_storage_uri"] == "storage://shop/videos/cat.mp4"
    assert probe(target)["frames"] == 150


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unreachable", "connect"),
        ("html", "unsupported image format"),
        ("tiny", "too small"),
        ("missing", "404"),
        ("storage-missing", "no object"),
        ("bomb", "too large"),  # a 70-byte PNG claiming 20000x20000, past Pillow's own bomb limit
    ],
)
def test_failed_job_ends_error_with_one_refund_and_no_files(loopback, settings, case, expected):
    loopback.routes["/page.jpg"] = Route(
        body=b"<html><body>not an image</body></html>", headers={"Content-Type": "image/jpeg"}
    )
    loopback.routes["/tiny.png"] = Route(body=png_bytes((200, 200)), headers={"Content-Type": "image/png"})
    loopback.routes["/bomb.png"] = Route(body=png_header_only(20_000, 20_000), headers={"Content-Type": "image/png"})
    team = make_team(credits=100)
    Storage.objects.create(team=team, name="shop", type="local", parameters={"path": ""})
    port = closed_port()
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [
        *settings.GENERATOR_FETCH_ALLOW_HOSTS,
        f"127.0.0.1:{port}",
    ]
    inputs = {
        "unreachable": f"http://127.0.0.1:{port}/photo.jpg",
        "html": loopback.url("/page.jpg"),
        "tiny": loopback.url("/tiny.png"),
        "missing": loopback.url("/gone.jpg"),
        "storage-missing": "storage://shop/nothing/here.jpg",
        "bomb": loopback.url("/bomb.png"),
    }
    generation = submit(
        team,
        input=inputs[case],
        output="storage://shop/out/" if case == "tiny" else None,
    )
    generation_run(generation.pk)
    generation_run(generation.pk)  # a repeated task must not refund twice
    generation.refresh_from_db()
    team.refresh_from_db()
    assert (generation.status, generation.stage) == ("ERROR", "error")
    assert len(generation.errors) == 1
    assert expected in generation.errors[0]["error"].lower()
    assert generation.errors[0]["created_at"].endswith("+00:00")
    assert ledger(generation) == [("hold", -35), ("refund", 35)]
    assert team.balance == 100
    assert media_files(settings) == []
    assert not any(p.is_file() for p in Path(settings.GENERATOR_LOCAL_STORAGE_ROOT).rglob("*"))


@pytest.mark.django_db
def test_reaper_requeues_an_expired_lease_then_fails_with_one_refund(django_capture_on_commit_callbacks, settings):
    settings.GENERATOR_MAX_ATTEMPTS = 2
    team = make_team(credits=100)
    generation = submit(team, input="https://shop.example/a.jpg")
    past = timezone.now() - timedelta(seconds=1)
    Generation.objects.filter(pk=generation.pk).update(stage="rendering", attempts=1, lease_expires_at=past)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = generations_reap()
    assert report.requeued == 1
    assert len(callbacks) == 1
    generation.refresh_from_db()
    assert (generation.status, generation.stage, generation.progress) == (
        "PROCESSING",
        "queued",
        0,
    )
    Generation.objects.filter(pk=generation.pk).update(stage="storing", attempts=2, lease_expires_at=past)
    assert generations_reap().failed == 1
    assert generations_reap().failed == 0
    generation.refresh_from_db()
    team.refresh_from_db()
    assert generation.status == "ERROR"
    assert "worker stopped" in generation.errors[0]["error"]
    assert ledger(generation) == [("hold", -35), ("refund", 35)]
    assert team.balance == 100


@pytest.mark.django_db
def test_reaper_leaves_live_leases_and_reenqueues_lost_queued_jobs(
    django_capture_on_commit_callbacks,
):
    team = make_team(credits=1000, rate_per_second=10)
    running = submit(team, input="https://shop.example/a.jpg")
    lost = submit(team, input="https://shop.example/b.jpg")
    fresh = submit(team, input="https://shop.example/c.jpg")
    now = timezone.now()
    Generation.objects.filter(pk=running.pk).update(
        stage="rendering", attempts=1, lease_expires_at=now + timedelta(seconds=30)
    )
    Generation.objects.filter(pk=lost.pk).update(lease_expires_at=now - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = generations_reap()
    assert (report.requeued, report.failed, report.reenqueued) == (0, 0, 1)
    assert len(callbacks) == 1
    for generation in (running, lost, fresh):
        generation.refresh_from_db()
        assert generation.status == "PROCESSING"
    assert lost.lease_expires_at > now


# --- A real worker process killed with SIGKILL in the middle of a job ----------------------


@pytest.fixture
def worker_env(tmp_path):
    env = project_env(tmp_path, **SHORT_LEASES)
    manage(env, "migrate", "-v", "0")
    folder = tmp_path / "storages" / "kill" / "in"
    folder.mkdir(parents=True)
    # Astronaut (512x512) renders 300 frames at 1024x1024: long enough to be caught mid-render.
    shutil.copy(FIXTURES / "astronaut.png", folder / "photo.png")
    return env, tmp_path / "db.sqlite3"


CREATE_JOB = """
from generator.models import Storage, Team
from generator.contract.generate import GenerateRequest
from generator.services.billing import credits_grant
from generator.services.generations import generation_create
team = Team.objects.create(name="Kill", slug="kill")
credits_grant(team=team, amount=100, reason="test")
Storage.objects.create(team=team, name="in", type="local", parameters={"path": "in"})
request = GenerateRequest(input="storage://in/photo.png", options={"prompt": "slow zoom in", "duration": 10})
print(generation_create(team=team, request=request).generation.pk)
"""


def row(db: Path, pk: int) -> dict:
    with sqlite3.connect(db, timeout=20) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM generator_generation WHERE id = ?", (pk,)).fetchone()
        entries = conn.execute(
            "SELECT kind, amount FROM generator_creditledger WHERE generation_id = ? ORDER BY id",
            (pk,),
        ).fetchall()
        balance = conn.execute("SELECT balance FROM generator_team WHERE slug = 'kill'").fetchone()[0]
    return {**dict(found), "ledger": [tuple(e) for e in entries], "balance": balance}


def kill_mid_render(env: dict, db: Path, pk: int) -> dict:
    worker = start_cluster(env)
    try:
        assert wait_for(
            lambda: row(db, pk)["stage"] == "rendering" and row(db, pk)["progress"] > 20,
            120,
        )
    finally:
        kill_cluster(worker)
    killed = row(db, pk)
    assert killed["status"] == "PROCESSING"
    return killed


@pytest.mark.slow
def test_worker_killed_mid_render_is_retried_and_charged_once(worker_env):
    env, db = worker_env
    pk = int(manage_shell(env, CREATE_JOB))
    killed = kill_mid_render(env, db, pk)
    assert killed["attempts"] == 1
    time.sleep(3.5)  # let the 3 s lease run out
    assert "requeued=1" in manage_shell(env, "from generator.tasks import reap_task; print(reap_task())")
    worker = start_cluster(env)
    reaped_while_running = []
    try:
        assert wait_for(lambda: row(db, pk)["attempts"] == 2, 60)
        # The render outlives the 3 s lease; renewals keep the reaper off a live job.
        while row(db, pk)["status"] == "PROCESSING":
            report = manage_shell(env, "from generator.tasks import reap_task; print(reap_task())")
            if row(db, pk)["status"] == "PROCESSING":
                reaped_while_running.append(report)
        assert wait_for(lambda: row(db, pk)["status"] != "PROCESSING", 150)
    finally:
        kill_cluster(worker)
    assert reaped_while_running
    assert set(reaped_while_running) == {"requeued=0 failed=0 reenqueued=0"}
    final = row(db, pk)
    assert (final["status"], final["attempts"]) == ("DONE", 2)
    assert final["ledger"] == [("hold", -70)]
    assert final["balance"] == 30
    assert probe(Path(env["MEDIA_ROOT"]) / final["video_name"])["frames"] == 300


@pytest.mark.slow
def test_worker_killed_on_its_last_attempt_ends_error_with_one_refund(worker_env):
    env, db = worker_env
    env = {**env, "GENERATOR_MAX_ATTEMPTS": "1"}
    pk = int(manage_shell(env, CREATE_JOB))
    kill_mid_render(env, db, pk)
    time.sleep(3.5)
    assert "failed=1" in manage_shell(env, "from generator.tasks import reap_task; print(reap_task())")
    assert "failed=0" in manage_shell(env, "from generator.tasks import reap_task; print(reap_task())")
    final = row(db, pk)
    assert (final["status"], final["stage"]) == ("ERROR", "error")
    assert final["ledger"] == [("hold", -70), ("refund", 70)]
    assert final["balance"] == 100
    assert not any(p.is_file() for p in (Path(env["MEDIA_ROOT"])).rglob("*.mp4"))


@pytest.mark.django_db
def test_finished_jobs_hand_over_to_the_webhook_once(loopback, settings, monkeypatch):
    from generator.services import webhooks

    handed = []
    monkeypatch.setattr(webhooks, "webhook_deliver_later", handed.append)
    loopback.routes["/ok.png"] = Route(body=png_bytes(), headers={"Content-Type": "image/png"})
    team = make_team(credits=100, rate_per_second=10)
    done = submit(team, input=loopback.url("/ok.png"))
    failed = submit(team, input=loopback.url("/missing.png"))
    for generation in (done, failed, done, failed):
        generation_run(generation.pk)
    assert handed == [done.pk, failed.pk]


@pytest.mark.django_db
def test_failed_store_to_storage_refunds_and_removes_the_poster(loopback, settings):
    loopback.routes["/ok.png"] = Route(body=png_bytes(), headers={"Content-Type": "image/png"})
    team = make_team(credits=100)
    Storage.objects.create(team=team, name="shop", type="local", parameters={"path": ""})
    team_root = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug
    team_root.mkdir()
    (team_root / "out").write_bytes(b"a file where the folder should be")
    generation = submit(team, input=loopback.url("/ok.png"), output="storage://shop/out/")
    generation_run(generation.pk)
    generation.refresh_from_db()
    assert generation.status == "ERROR"
    assert "cannot write" in generation.errors[0]["error"]
    assert ledger(generation) == [("hold", -35), ("refund", 35)]
    assert media_files(settings) == []
    assert sorted(p.name for p in team_root.rglob("*")) == ["out"]


@pytest.mark.django_db
def test_reaper_failing_a_dead_job_removes_what_its_attempt_left(settings):
    team = make_team(credits=100)
    storage = Storage.objects.create(team=team, name="shop", type="local", parameters={"path": ""})
    generation = submit(team, input="https://shop.example/a.jpg", output="storage://shop/out/")
    left = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "out" / f"{generation.uuid.hex}.mp4"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"partial")
    poster = settings.MEDIA_ROOT / "posters" / f"{generation.uuid}.jpg"
    poster.parent.mkdir(parents=True)
    poster.write_bytes(b"poster")
    keep = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "out" / "customer.mp4"
    keep.write_bytes(b"theirs")
    Generation.objects.filter(pk=generation.pk).update(
        stage="storing",
        attempts=2,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert generations_reap().failed == 1
    assert storage.pk == generation.output_storage_id
    assert not left.exists()
    assert not poster.exists()
    assert keep.read_bytes() == b"theirs"


def _failing_upload(monkeypatch, *, partial: bool) -> None:
    from generator.storage.base import StorageError
    from generator.storage.local import LocalConnector

    real_write = LocalConnector.write_file

    def write_then_fail(self, key, path, *, content_type):
        if partial:  # the upload got part of the way, as a dropped connection leaves it
            real_write(self, key, path, content_type=content_type)
        raise StorageError("upload timed out")

    monkeypatch.setattr(LocalConnector, "write_file", write_then_fail)


@pytest.mark.django_db
def test_failed_upload_to_an_exact_key_keeps_the_customers_object(settings, monkeypatch):
    team = make_team(credits=100)
    Storage.objects.create(team=team, name="shop", type="local", parameters={"path": ""})
    team_root = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug
    (team_root / "out").mkdir(parents=True)
    shutil.copy(FIXTURES / "chelsea.png", team_root / "cat.png")
    keep = team_root / "out" / "keep.mp4"
    keep.write_bytes(b"the customer's existing video")
    _failing_upload(monkeypatch, partial=False)
    generation = submit(team, input="storage://shop/cat.png", output="storage://shop/out/keep.mp4")
    generation_run(generation.pk)
    generation.refresh_from_db()
    assert generation.status == "ERROR"
    assert "upload timed out" in generation.errors[0]["error"]
    assert ledger(generation) == [("hold", -35), ("refund", 35)]
    assert keep.read_bytes() == b"the customer's existing video"


@pytest.mark.django_db
def test_failed_upload_to_a_folder_removes_the_object_we_named(settings, monkeypatch):
    team = make_team(credits=100)
    Storage.objects.create(team=team, name="shop", type="local", parameters={"path": ""})
    team_root = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug
    (team_root / "out").mkdir(parents=True)
    shutil.copy(FIXTURES / "chelsea.png", team_root / "cat.png")
    (team_root / "out" / "theirs.mp4").write_bytes(b"theirs")
    _failing_upload(monkeypatch, partial=True)
    generation = submit(team, input="storage://shop/cat.png", output="storage://shop/out/")
    generation_run(generation.pk)
    generation.refresh_from_db()
    assert generation.status == "ERROR"
    assert sorted(p.name for p in (team_root / "out").iterdir()) == ["theirs.mp4"]


@pytest.mark.django_db
def test_a_job_with_a_shape_gets_a_video_of_that_shape_and_resolution(loopback, settings):
    loopback.routes["/chelsea.png"] = Route(body=png_bytes(), headers={"Content-Type": "image/png"})
    team = make_team(credits=100)
    options = {**OPTIONS, "aspect_ratio": "9:16", "resolution": "720p", "background": "blur"}
    request = GenerateRequest(input=loopback.url("/chelsea.png"), options=options)
    generation = generation_create(team=team, request=request).generation
    generation_run(generation.pk)
    generation.refresh_from_db()
    assert generation.status == "DONE", generation.errors
    video = probe(settings.MEDIA_ROOT / generation.video_name)
    assert (video["size"], video["frames"]) == ((720, 1280), 150)
    assert generation.plan["format"]["aspect_ratio"] == "9:16"
    assert generation.plan["format"]["fill"] == "blur"
    with Image.open(settings.MEDIA_ROOT / generation.poster_name) as poster:
        assert poster.size == (720, 1280)
