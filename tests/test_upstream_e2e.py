"""Upstream engines end to end with real processes (slow): this service standing in for Claid, and a
cluster killed while jobs wait upstream, and no worker held while jobs wait (bench/upstream.py, smaller).

Two instances of this service run on loopback, each with its own SQLite file, media folder, web
server and worker. Instance A runs the built-in engine; instance B has a `claid` connection whose
`base_url` is A (allow-listed) with a key of A's. Jobs submitted to B (API and dashboard form)
become jobs on A, are rendered there, downloaded by B through its safe fetcher and land in B's
gallery; each side charges its own price; an error on A comes back as an error on B.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import uuid

import av
import httpx
import pytest
from PIL import Image

from tests.factories import PASSWORD
from tests.harness import ROOT, SHORT_LEASES, Instance, sqlite_rows, wait_for
from tests.loopback import LoopbackServer, Route, Seen

pytestmark = pytest.mark.slow

B_PRICE_5S = 40  # not 35, so B's charge cannot be confused with A's
OPTIONS = {"prompt": "slow zoom in", "duration": 5, "guidance_scale": 0.5}

SETUP_A = """
from generator.services.apikeys import apikey_create
from generator.services.billing import credits_grant
from generator.models import Team
team = Team.objects.create(name="Alpha", slug="alpha", rate_per_second=10, rate_per_minute=100)
credits_grant(team=team, amount=1000, reason="test")
print(apikey_create(team=team, name="for bravo", scopes=["video_generation"])[1])
"""

SETUP_B = """
from generator.services.apikeys import apikey_create
from generator.services.billing import credits_grant
from generator.models import Membership, Team, User
team = Team.objects.create(name="Bravo", slug="bravo", rate_per_second=10, rate_per_minute=100)
credits_grant(team=team, amount=1000, reason="test")
owner = User.objects.create_user(email="owner@bravo.example", password="{password}")
Membership.objects.create(team=team, user=owner, role="owner")
print(apikey_create(team=team, name="script", scopes=["video_generation", "engines"])[1])
"""

# What staff do in the admin (the price) and an owner on the Engines page (the default engine).
PRICE_AND_DEFAULT = """
from generator.models import EngineConnection, Team, User
from generator.services.engine_connections import engine_set_default
EngineConnection.objects.filter(name="alpha").update(price_5s={price}, price_10s={price} * 2)
engine_set_default(team=Team.objects.get(slug="bravo"), user=User.objects.get(email="owner@bravo.example"), name="alpha")
print("ok")
"""


def jpeg(size: tuple[int, int]) -> bytes:
    photo = Image.open(ROOT / "tests" / "fixtures" / "chelsea.png").convert("RGB").resize(size)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def photo_server() -> LoopbackServer:
    """The shop's photos. /changes.jpg is 400x300 the first time it is fetched and 299x300 after:
    it passes B's own check, then A refuses it (the photo changed between the two fetches)."""
    photos = LoopbackServer()
    photos.routes["/cat.jpg"] = Route(body=jpeg((400, 300)), headers={"Content-Type": "image/jpeg"})
    fetched: list[Seen] = []

    def changes(seen: Seen) -> Route:
        fetched.append(seen)
        size = (400, 300) if len(fetched) == 1 else (299, 300)
        return Route(body=jpeg(size), headers={"Content-Type": "image/jpeg"})

    photos.routes["/changes.jpg"] = changes
    return photos


def log_in(base: str, email: str) -> httpx.Client:
    """A browser-like session: the login form's CSRF cookie and token, then the session cookie."""
    session = httpx.Client(base_url=base, timeout=30)
    page = session.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        "/accounts/login/", data={"csrfmiddlewaretoken": token, "username": email, "password": PASSWORD}
    )
    assert answer.status_code == 302, answer.text[-2000:]
    return session


def form_token(session: httpx.Client, path: str) -> tuple[str, str]:
    """The CSRF token and the form's own token of the form at `path`."""
    page = session.get(path).text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return csrf, token


def mp4_seconds(data: bytes) -> tuple[str, float, int]:
    """Decode every frame of an MP4: (codec, duration in s, frames)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.name, float(container.duration / av.time_base), frames


def balance(instance: Instance, slug: str) -> int:
    return sqlite_rows(instance.db, "SELECT balance FROM generator_team WHERE slug = ?", slug)[0]["balance"]


def ledger(instance: Instance, generation_id: int) -> list[tuple[str, int]]:
    rows = sqlite_rows(
        instance.db,
        "SELECT kind, amount FROM generator_creditledger WHERE generation_id = ? ORDER BY id",
        generation_id,
    )
    return [(row["kind"], row["amount"]) for row in rows]


@pytest.fixture
def instances(tmp_path):
    photos = photo_server()
    a = Instance(tmp_path / "a", GENERATOR_FETCH_ALLOW_HOSTS=f"127.0.0.1:{photos.port}", GENERATOR_WORKERS="1")
    b = Instance(
        tmp_path / "b",
        GENERATOR_FETCH_ALLOW_HOSTS=f"127.0.0.1:{photos.port},127.0.0.1:{a.port}",
        GENERATOR_WORKERS="1",
    )
    a_key = a.shell(SETUP_A)
    b_key = b.shell(SETUP_B.format(password=PASSWORD))
    try:
        a.start()
        b.start()
        yield photos, a, a_key, b, b_key
    finally:
        for instance in (a, b):
            instance.stop()
        photos.close()


def test_our_server_stands_in_for_claid_api_and_dashboard_jobs_errors_and_both_ledgers(instances):
    photos, a, a_key, b, b_key = instances
    api = httpx.Client(base_url=b.base, headers={"Authorization": f"Bearer {b_key}"}, timeout=30)

    # Connecting tests A's key with one cheap call to A (GET /v1/account); a wrong key is A's 401, as a 422.
    connection = {"name": "alpha", "type": "claid", "parameters": {"base_url": a.base}}
    refused = api.post("/v1/engines", json={**connection, "credentials": {"api_key": "not-a-key-of-alpha"}})
    assert refused.status_code == 422, refused.text
    assert "connection test failed" in refused.json()["error_message"]
    created = api.post("/v1/engines", json={**connection, "credentials": {"api_key": a_key}})
    assert created.status_code == 201, created.text
    assert a_key not in created.text
    assert b.shell(PRICE_AND_DEFAULT.format(price=B_PRICE_5S)) == "ok"

    started = time.monotonic()
    # 1. A script on B's API naming the engine.
    by_api = api.post(
        "/v1/video/generate", json={"input": photos.url("/cat.jpg"), "options": {**OPTIONS, "engine": "alpha"}}
    )
    assert by_api.status_code == 200, by_api.text
    by_api_id = by_api.json()["data"]["id"]
    # 2. B's dashboard Generate form, logged in; the team's default engine is alpha.
    session = log_in(b.base, "owner@bravo.example")
    csrf, token = form_token(session, "/")
    form = {
        "csrfmiddlewaretoken": csrf,
        "token": token,
        "source": "url",
        "url": photos.url("/cat.jpg"),
        "prompt_mode": "text",
        "prompt": "gentle float",
        "duration": "5",
        "guidance_scale": "0.5",
        "output_mode": "temporary",
    }
    posted = session.post("/generate/", data=form)
    assert posted.status_code == 302, posted.text[-3000:]
    assert "/jobs/#job-" in posted.headers["location"]
    by_form_uuid = posted.headers["location"].rsplit("#job-", 1)[1].replace("-", "")
    by_form_id = sqlite_rows(b.db, "SELECT id FROM generator_generation WHERE uuid = ?", by_form_uuid)[0]["id"]
    # 3. A photo A refuses (299 px wide when A fetches it).
    failing = api.post("/v1/video/generate", json={"input": photos.url("/changes.jpg"), "options": OPTIONS})
    assert failing.status_code == 200, failing.text
    failing_id = failing.json()["data"]["id"]

    def finished() -> bool:
        rows = sqlite_rows(b.db, "SELECT status FROM generator_generation")
        return len(rows) == 3 and all(row["status"] in {"DONE", "ERROR"} for row in rows)

    assert wait_for(finished, 150, interval_s=0.5), b.log_tail() + a.log_tail()
    elapsed = time.monotonic() - started

    # Each job on B became one job on A, which B names as its upstream id.
    a_jobs = {
        row["id"]: row for row in sqlite_rows(a.db, "SELECT id, status, request, errors FROM generator_generation")
    }
    assert len(a_jobs) == 3
    answers = {pk: api.get(f"/v1/video/generate/{pk}").json()["data"] for pk in (by_api_id, by_form_id, failing_id)}
    for pk in (by_api_id, by_form_id):
        data = answers[pk]
        assert data["status"] == "DONE", data
        upstream = int(data["engine"]["upstream_id"])
        assert data["engine"] == {"name": "alpha", "type": "claid", "upstream_id": str(upstream)}
        assert a_jobs[upstream]["status"] == "DONE"
        assert ledger(a, upstream) == [("hold", -35)]
        assert ledger(b, pk) == [("hold", -B_PRICE_5S)]
        # B's own /v/ link (never A's): no login, a real 5 s H.264 MP4.
        link = data["result"]["output_object"]["tmp_url"]
        assert link.startswith(f"{b.base}/v/"), link
        video = httpx.get(link, timeout=30)
        assert video.status_code == 200
        codec, seconds, frames = mp4_seconds(video.content)
        assert codec == "h264"
        assert abs(seconds - 5) < 0.3
        assert frames > 50
    # A was asked for what B was asked: the photo's own URL and the options.
    form_on_a = json.loads(a_jobs[int(answers[by_form_id]["engine"]["upstream_id"])]["request"])
    assert form_on_a["input"] == photos.url("/cat.jpg")
    assert form_on_a["options"]["prompt"] == "gentle float"

    # A's refusal is B's error, in A's words; both sides refunded.
    error = answers[failing_id]
    assert error["status"] == "ERROR"
    upstream = int(error["engine"]["upstream_id"])
    assert a_jobs[upstream]["status"] == "ERROR"
    assert "299x300; each side must be at least 300 px" in a_jobs[upstream]["errors"]
    assert "299x300; each side must be at least 300 px" in error["errors"][0]["error"], error
    assert ledger(a, upstream) == [("hold", -35), ("refund", 35)]
    assert ledger(b, failing_id) == [("hold", -B_PRICE_5S), ("refund", B_PRICE_5S)]
    assert balance(a, "alpha") == 1000 - 2 * 35
    assert balance(b, "bravo") == 1000 - 2 * B_PRICE_5S

    # B's gallery shows both videos, with links that play without a login.
    gallery = session.get("/gallery/").text
    links = set(re.findall(r'href="(http://127\.0\.0\.1:\d+/v/[^"]+)"', gallery))
    done_uuids = {row["uuid"] for row in sqlite_rows(b.db, "SELECT uuid FROM generator_generation WHERE status='DONE'")}
    assert {link.split("/v/")[1].split(":")[0].replace("-", "") for link in links} == done_uuids, gallery[-3000:]
    for link in links:
        video = httpx.get(link, timeout=30)
        assert video.status_code == 200
        assert mp4_seconds(video.content)[0] == "h264"
    print(f"three jobs through B and A in {elapsed:.1f} s")


# --- a worker killed while jobs wait upstream ---------------------------------------------------

JOBS_ON_FAKE_CLAID = """
from generator.contract.generate import GenerateRequest
from generator.crypto import encrypt_json
from generator.models import EngineConnection, Team
from generator.services.billing import credits_grant
from generator.services.generations import generation_create
team = Team.objects.create(name="Kill", slug="kill", rate_per_second=100, rate_per_minute=1000)
credits_grant(team=team, amount=1000, reason="test")
EngineConnection.objects.create(
    team=team, name="claid", type="claid", parameters={{"base_url": "{base}"}},
    secrets_encrypted=encrypt_json({{"api_key": "{key}"}}),
)
for index in range({count}):
    request = GenerateRequest.parse({{"input": "{photo}", "options": {{"prompt": f"job {{index}}", "engine": "claid"}}}})
    generation_create(team=team, request=request)
print("ok")
"""


def a_moment_to_kill(db, count: int, *, waiting: int) -> bool:
    """`waiting` jobs wait upstream, the others wait their turn to be submitted (after Claid's 429);
    none holds a lease, and none is claimed by a poll task: each next look is booked 0.3..35 s on.

    (A claim books the next look CLAIM_S = 120 s on, so killing inside one would only delay that job;
    and no job can be claimed before it is due, so none is between the check and the kill.)
    """
    rows = sqlite_rows(
        db,
        "SELECT stage, lease_expires_at, (julianday(next_poll_at) - julianday('now')) * 86400 AS due_in"
        " FROM generator_generation",
    )
    return (
        len(rows) == count
        and sorted(row["stage"] for row in rows) == ["submitting"] * (count - waiting) + ["waiting"] * waiting
        and all(row["lease_expires_at"] is None and 0.3 < row["due_in"] < 35 for row in rows)
    )


def test_a_cluster_killed_while_jobs_wait_upstream_loses_none_and_submits_none_twice(tmp_path):
    """SIGKILL while three jobs wait upstream and three wait their turn after Claid's 429."""
    from tests.fakes.claid import KEY, FakeClaidJobs

    count = 6
    upstream = LoopbackServer()
    fake = FakeClaidJobs(upstream, hold=True, busy_after=3)
    instance = Instance(tmp_path, **SHORT_LEASES, GENERATOR_FETCH_ALLOW_HOSTS=f"127.0.0.1:{upstream.port}")
    try:
        setup = JOBS_ON_FAKE_CLAID.format(
            base=upstream.url("").rstrip("/"), key=KEY, photo=upstream.url("/photo.png"), count=count
        )
        assert instance.shell(setup) == "ok"
        instance.start_cluster()
        # Claid takes three jobs (1 a second) and answers the others 429 with Retry-After: 4; kill while
        # three wait upstream and three wait their turn.
        assert wait_for(
            lambda: len(fake.refused) == 3 and a_moment_to_kill(instance.db, count, waiting=3), 60, interval_s=0.05
        ), instance.log_tail()
        instance.kill_cluster()
        killed = sqlite_rows(instance.db, "SELECT id, stage, engine_info FROM generator_generation ORDER BY id")
        sent_before = {
            row["id"]: json.loads(row["engine_info"])["upstream_id"] for row in killed if row["stage"] == "waiting"
        }
        assert len(sent_before) == 3
        assert sum(fake.submits.values()) == 3
        time.sleep(3)  # looks fall due while no worker runs
        assert "requeued=0 failed=0" in instance.shell("from generator.tasks import reap_task; print(reap_task())")
        fake.release()  # the models finish while the cluster is down
        instance.start_cluster()
        restarted = time.monotonic()
        assert wait_for(
            lambda: (
                {row["status"] for row in sqlite_rows(instance.db, "SELECT status FROM generator_generation")}
                == {"DONE"}
            ),
            60,
        ), instance.log_tail()
        after_restart = time.monotonic() - restarted
    finally:
        instance.stop()
        upstream.close()
    rows = sqlite_rows(
        instance.db, "SELECT id, uuid, attempts, engine_info, video_name FROM generator_generation ORDER BY id"
    )
    # Each job went upstream exactly once (one accepted POST per Idempotency-Key, the job's uuid), on its
    # first attempt; the three refused with 429 before the kill were sent again after it.
    uuids = {str(uuid.UUID(row["uuid"])) for row in rows}
    assert dict(fake.submits) == dict.fromkeys(uuids, 1)
    assert set(fake.refused) == {str(uuid.UUID(row["uuid"])) for row in rows if row["id"] not in sent_before}
    assert {row["attempts"] for row in rows} == {1}
    # Those already waiting kept their upstream job; the others got one each after the restart.
    upstream_ids = {row["id"]: json.loads(row["engine_info"])["upstream_id"] for row in rows}
    assert {pk: upstream_ids[pk] for pk in sent_before} == sent_before
    assert sorted(int(json.loads(row["engine_info"])["upstream_id"]) for row in rows) == sorted(fake.jobs)
    for row in rows:
        assert ledger(instance, row["id"]) == [("hold", -35)]
        with av.open(str(tmp_path / "media" / row["video_name"])) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert round(float(container.duration / av.time_base)) == 5
    assert balance(instance, "kill") == 1000 - count * 35
    print(
        f"{len(sent_before)} waiting and {count - len(sent_before)} submitting at the kill; done {after_restart:.1f} s after"
    )


# --- no worker is held: the benchmark's claim, smaller ---------------------------------------------


def test_thirty_ten_second_fal_jobs_on_two_workers_finish_in_a_fraction_of_the_serial_time():
    """bench/upstream.py at 30 jobs x 10 s: two workers held for each wait would need 150 s."""
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    result = subprocess.run(
        [sys.executable, "bench/upstream.py", "--jobs", "30", "--seconds", "10", "--idle", "3", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]  # it checks every job DONE, each submitted once
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["held_workers_would_take_s"] == 150
    assert figures["wall_s"] < 45, figures
    assert figures["looks_per_job"] <= 6, figures
    assert figures["poll_cpu_ms_per_job"] < 250, figures
