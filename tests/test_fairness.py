"""Fairness between teams: a free worker serves the team that has waited longest since its last
start, so one team's long queue delays another team's job by at most one job per worker; the
queue position on the job page follows the same order."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from generator import selectors
from generator.models import Generation
from generator.services.claims import generation_claim_next
from tests.factories import make_team
from tests.harness import kill_cluster, manage, manage_shell, project_env, sqlite_rows, start_cluster, wait_for

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
REQUEST = {"input": "https://shop.example/shoe.jpg", "options": {"prompt": "zoom in", "duration": 5}}


def queued(team, *, at, count: int = 1) -> list[Generation]:
    return [
        Generation.objects.create(team=team, request=REQUEST, cost=35, created_at=at + timedelta(milliseconds=i))
        for i in range(count)
    ]


def started(team, *, at) -> Generation:
    return Generation.objects.create(
        team=team, request=REQUEST, cost=35, stage="rendering", attempts=1, started_at=at, created_at=at
    )


def claim_order() -> list[int]:
    order = []
    while (claimed := generation_claim_next()) is not None:
        order.append(claimed[0])
    return order


def positions(team) -> dict[int, int]:
    jobs = list(Generation.objects.filter(team=team))
    selectors.queue_positions(jobs, team=team)
    return {job.pk: job.queue_position for job in jobs if job.queue_position is not None}


@pytest.mark.django_db
def test_a_single_job_of_another_team_goes_before_a_long_queue_s_second_job():
    now = timezone.now()
    big, small = make_team(), make_team()
    started(big, at=now - timedelta(seconds=5))
    a_jobs = queued(big, at=now - timedelta(seconds=60), count=100)
    (b_job,) = queued(small, at=now)
    order = claim_order()
    # Team A is mid-queue (it started a job 5 s ago); B has never started one: B goes first.
    assert order[0] == b_job.pk
    assert order[1:] == [job.pk for job in a_jobs]


@pytest.mark.django_db
def test_teams_take_turns_one_job_each_and_each_team_keeps_its_own_order():
    now = timezone.now()
    a, b, c = make_team(), make_team(), make_team()
    started(a, at=now - timedelta(seconds=30))
    started(b, at=now - timedelta(seconds=20))
    a_jobs = queued(a, at=now - timedelta(seconds=100), count=3)
    b_jobs = queued(b, at=now - timedelta(seconds=90), count=1)
    c_jobs = queued(c, at=now - timedelta(seconds=10), count=2)
    order = claim_order()
    # C never started: first; then A (last start 30 s ago), then B (20 s ago); then round 2 ...
    expected = [c_jobs[0], a_jobs[0], b_jobs[0], c_jobs[1], a_jobs[1], a_jobs[2]]
    assert order == [job.pk for job in expected]


@pytest.mark.django_db
def test_the_queue_position_shown_is_the_order_workers_take_jobs_in():
    now = timezone.now()
    teams = [make_team() for _ in range(4)]
    started(teams[0], at=now - timedelta(seconds=3))
    started(teams[2], at=now - timedelta(seconds=50))
    for index, (team, count) in enumerate(zip(teams, (7, 1, 4, 2), strict=True)):
        queued(team, at=now - timedelta(seconds=40 - index), count=count)
    shown: dict[int, int] = {}
    for team in teams:
        shown.update(positions(team))
    assert sorted(shown.values()) == list(range(1, 15))
    by_position = [pk for pk, _ in sorted(shown.items(), key=lambda item: item[1])]
    assert claim_order() == by_position


@pytest.mark.django_db
def test_jobs_out_of_attempts_or_running_are_not_in_the_queue(settings):
    settings.GENERATOR_MAX_ATTEMPTS = 2
    now = timezone.now()
    team = make_team()
    (spent,) = queued(team, at=now - timedelta(seconds=9))
    Generation.objects.filter(pk=spent.pk).update(attempts=2)
    running = started(team, at=now)
    (waiting,) = queued(team, at=now)
    assert positions(team) == {waiting.pk: 1}
    assert claim_order() == [waiting.pk]
    running.refresh_from_db()
    assert running.stage == "rendering"


# --- Real clusters: the ORM broker and Redis --------------------------------------------------------

SETUP = """
import io
from pathlib import Path
from PIL import Image
from django.conf import settings
from generator.contract.generate import GenerateRequest
from generator.models import Storage, Team
from generator.services.billing import credits_grant
from generator.services.generations import generation_create
from django_q.brokers import get_broker

get_broker().purge_queue()  # tasks other tests left in a shared Redis database
for name in ("Big", "Small"):
    team = Team.objects.create(name=name, slug=name.lower(), rate_per_second=1000, rate_per_minute=1000)
    credits_grant(team=team, amount=10_000, reason="test")
    folder = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / team.slug / "in"
    folder.mkdir(parents=True)
    Image.open("{fixture}").convert("RGB").resize((300, 300)).save(folder / "photo.png")
    Storage.objects.create(team=team, name="in", type="local", parameters={{"path": "in"}})
request = GenerateRequest(input="storage://in/photo.png", options={{"prompt": "slow zoom in", "duration": 5}})
big = Team.objects.get(name="Big")
for _ in range(100):
    generation_create(team=big, request=request)
print("ok")
"""

SUBMIT_SMALL = """
from generator.contract.generate import GenerateRequest
from generator.models import Team
from generator.services.generations import generation_create
request = GenerateRequest(input="storage://in/photo.png", options={"prompt": "slow zoom in", "duration": 5})
print(generation_create(team=Team.objects.get(name="Small"), request=request).generation.pk)
"""


def _rows(db: Path) -> list[dict]:
    return sqlite_rows(
        db,
        "SELECT g.id, t.name AS team, g.created_at, g.started_at FROM generator_generation g "
        "JOIN generator_team t ON t.id = g.team_id",
    )


def _cluster_env(tmp_path: Path, broker: str) -> dict:
    env = project_env(tmp_path, GENERATOR_WORKERS="1")
    if broker == "redis":
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    return env


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_real_cluster_starts_the_other_team_s_job_before_the_long_queue_s_second_next(tmp_path, broker):
    if broker == "redis" and not os.environ.get("REDIS_URL"):
        assert os.environ.get("REQUIRE_SERVICES") != "1", "REQUIRE_SERVICES=1 needs REDIS_URL"
        pytest.skip("needs Redis: set REDIS_URL=redis://...")
    env = _cluster_env(tmp_path, broker)
    db = tmp_path / "db.sqlite3"
    manage(env, "migrate", "-v", "0")
    assert manage_shell(env, SETUP.format(fixture=FIXTURES / "coffee.png")) == "ok"
    worker = start_cluster(env)
    try:
        assert wait_for(lambda: any(row["started_at"] for row in _rows(db)), 60), "the worker never started"
        small_pk = int(manage_shell(env, SUBMIT_SMALL))
        assert wait_for(lambda: any(r["id"] == small_pk and r["started_at"] for r in _rows(db)), 60)
    finally:
        kill_cluster(worker)
    rows = _rows(db)
    small = next(row for row in rows if row["id"] == small_pk)
    # A's jobs that were still waiting when B submitted, in the order they started (unstarted last).
    waiting = sorted(
        (
            row
            for row in rows
            if row["team"] == "Big" and (not row["started_at"] or row["started_at"] > small["created_at"])
        ),
        key=lambda row: row["started_at"] or "~",
    )
    assert len(waiting) > 90, "the queue drained before B submitted; the test proves nothing"
    started_between = [row for row in waiting if row["started_at"] and row["started_at"] < small["started_at"]]
    assert len(started_between) <= 1  # one worker: at most the job it was already taking
    assert not waiting[1]["started_at"] or small["started_at"] < waiting[1]["started_at"]
