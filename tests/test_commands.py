from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from generator.models import (
    ApiKey,
    CreditLedger,
    Generation,
    Membership,
    Storage,
    Team,
    User,
)
from generator.services.apikeys import apikey_authenticate
from tests.factories import make_team, make_user

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


@pytest.mark.django_db
def test_create_team_with_new_owner_prints_email_and_password():
    lines = run("create_team", "Acme Shoes", "--credits", "1000", "--owner", "Ops@Acme.test")
    team = Team.objects.get(name="Acme Shoes")
    assert team.slug == "acme-shoes"
    assert team.balance == 1000
    assert "email: ops@acme.test" in lines
    password = next(line.split(": ", 1)[1] for line in lines if line.startswith("password: "))
    assert authenticate(username="ops@acme.test", password=password) is not None
    assert Membership.objects.get(team=team).role == "owner"
    assert CreditLedger.objects.get(team=team).reason


@pytest.mark.django_db
def test_create_team_with_existing_owner_prints_no_password():
    make_user("boss@acme.test")
    lines = run("create_team", "Acme", "--owner", "boss@acme.test")
    assert "email: boss@acme.test" in lines
    assert not any(line.startswith("password:") for line in lines)


@pytest.mark.django_db
def test_grant_credits_prints_new_balance_and_can_deduct():
    team = make_team("Acme", credits=100)
    assert run("grant_credits", "Acme", "50", "--reason", "top-up") == ["balance: 150"]
    assert run("grant_credits", "Acme", "-120", "--reason", "correction") == ["balance: 30"]
    team.refresh_from_db()
    assert team.balance == 30
    assert sum(CreditLedger.objects.filter(team=team).values_list("amount", flat=True)) == 30


@pytest.mark.django_db
def test_create_api_key_prints_the_key_alone_on_the_last_line():
    team = make_team("Acme")
    lines = run("create_api_key", "Acme", "--name", "ci", "--scopes", "video_generation")
    key = apikey_authenticate(lines[-1])
    assert key is not None
    assert key.team == team
    assert key.scopes == ["video_generation"]
    assert key.created_by is None


@pytest.mark.django_db
def test_set_rate_limits_and_reset():
    team = make_team("Acme")
    run("set_rate_limits", "Acme", "--per-second", "3", "--per-minute", "90")
    team.refresh_from_db()
    assert (team.per_second_limit, team.per_minute_limit) == (3, 90)
    run("set_rate_limits", "Acme", "--reset")
    team.refresh_from_db()
    assert (
        team.rate_per_second,
        team.rate_per_minute,
        team.per_second_limit,
        team.per_minute_limit,
    ) == (
        None,
        None,
        1,
        15,
    )


@pytest.mark.django_db
def test_grant_credits_refuses_a_balance_beyond_the_column_and_changes_nothing():
    from django.core.management.base import CommandError

    team = make_team("Acme", credits=1_000_000_000)
    run("grant_credits", "Acme", "1000000000", "--reason", "top-up")
    with pytest.raises(CommandError, match="2147483647"):
        run("grant_credits", "Acme", "200000000", "--reason", "top-up")
    team.refresh_from_db()
    assert team.balance == 2_000_000_000


@pytest.mark.django_db
def test_out_of_range_values_change_nothing():
    from django.core.management.base import CommandError

    team = make_team("Acme", credits=10)
    for argv in (
        ("set_rate_limits", "Acme", "--per-second", "1000001", "--per-minute", "5"),
        ("create_team", "Huge", "--credits", "1000000001"),
        ("create_api_key", "Acme", "--name", "k" * 101),
    ):
        with pytest.raises(CommandError):
            run(*argv)
    team.refresh_from_db()
    assert (team.rate_per_second, team.balance) == (None, 10)
    assert not Team.objects.filter(name="Huge").exists()
    assert not ApiKey.objects.filter(team=team).exists()
    assert run("set_rate_limits", "Acme", "--per-second", "1000000", "--per-minute", "1000000")
    assert run("create_api_key", "Acme", "--name", "k" * 100)[-1].startswith("iv_")


@pytest.mark.django_db
def test_purge_expired_deletes_only_expired_temporary_videos(settings):
    team = make_team()
    now = timezone.now()
    old, fresh = (
        Generation.objects.create(
            team=team,
            request={},
            status="DONE",
            stage="done",
            completed_at=now - timedelta(seconds=age_s),
            video_name=f"videos/t/{stem}.mp4",
            poster_name=f"posters/{stem}.jpg",
        )
        for stem, age_s in (("old", 86_401), ("new", 86_000))
    )
    for name in (
        "videos/t/old.mp4",
        "posters/old.jpg",
        "videos/t/new.mp4",
        "posters/new.jpg",
    ):
        path = settings.MEDIA_ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"data")
    assert run("purge_expired") == ["purged: 1"]
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.purged_at is not None
    assert fresh.purged_at is None
    assert not (settings.MEDIA_ROOT / "videos/t/old.mp4").exists()
    assert (settings.MEDIA_ROOT / "posters/old.jpg").exists()
    assert (settings.MEDIA_ROOT / "videos/t/new.mp4").exists()
    assert run("purge_expired") == ["purged: 0"]


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_reprints_fresh_secrets(settings):
    first = dict(line.split(": ", 1) for line in run("seed_demo"))
    second = dict(line.split(": ", 1) for line in run("seed_demo"))
    team = Team.objects.get(name="Demo")
    assert Team.objects.filter(name="Demo").count() == 1
    assert first["email"] == second["email"] == "demo@example.com"
    assert first["password"] != second["password"]
    assert authenticate(username="demo@example.com", password=first["password"]) is None
    assert authenticate(username="demo@example.com", password=second["password"]) is not None
    assert apikey_authenticate(first["api key"]) is None
    assert apikey_authenticate(second["api key"]).team == team
    assert ApiKey.objects.filter(team=team, name="demo").count() == 1
    assert Storage.objects.get(team=team, name="samples").type == "local"
    assert User.objects.filter(email="demo@example.com").count() == 1
    assert team.balance == 1050
    samples = settings.GENERATOR_LOCAL_STORAGE_ROOT / "demo" / "samples"
    photos = sorted(p.name for p in (ROOT / "tests" / "fixtures").iterdir() if p.suffix in {".png", ".jpg"})
    assert len(photos) >= 3
    assert sorted(p.name for p in samples.iterdir()) == photos
    assert CreditLedger.objects.filter(team=team).count() == 1


@pytest.mark.django_db
def test_setup_schedules_is_idempotent():
    run("setup_schedules")
    run("setup_schedules")
    by_func = {s.func: s for s in Schedule.objects.all()}
    assert len(by_func) == Schedule.objects.count() == 4
    assert by_func["generator.tasks.reap_task"].schedule_type == Schedule.MINUTES
    assert by_func["generator.tasks.reap_task"].minutes == 1
    assert by_func["generator.tasks.tick_task"].schedule_type == Schedule.MINUTES
    assert by_func["generator.tasks.purge_task"].schedule_type == Schedule.HOURLY
    assert by_func["generator.tasks.allowance_task"].schedule_type == Schedule.DAILY
    assert all(s.repeats == -1 for s in by_func.values())


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    """A migrated SQLite file for the real `manage.py` processes below."""
    data = tmp_path_factory.mktemp("cli")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{data / 'db.sqlite3'}",
        "GENERATOR_DATA_DIR": str(data),
        "GENERATOR_LOCAL_STORAGE_ROOT": str(data / "storages"),
        "MEDIA_ROOT": str(data / "media"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    subprocess.run(
        [sys.executable, "manage.py", "create_team", "Acme", "--credits", "10"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return env


@pytest.mark.parametrize(
    "argv",
    [
        ["grant_credits", "Nope", "5", "--reason", "x"],
        ["grant_credits", "Acme", "-11", "--reason", "too much"],
        ["grant_credits", "Acme", "five", "--reason", "x"],
        ["grant_credits", "Acme", "5"],
        ["create_team", "Acme"],
        ["create_team", "Other", "--owner", "not-an-email"],
        ["create_api_key", "Acme", "--scopes", "everything"],
        ["set_rate_limits", "Acme", "--per-second", "0", "--per-minute", "5"],
        ["set_rate_limits", "Acme", "--per-second", "2"],
        ["create_api_key"],
        ["grant_credits", "Acme", "100000000000000000000", "--reason", "x"],
        ["grant_credits", "Acme", "1000000001", "--reason", "x"],
        ["grant_credits", "Acme", "-100000000000000000000", "--reason", "x"],
        ["set_rate_limits", "Acme", "--per-second", "99999999999999999999", "--per-minute", "5"],
        ["set_rate_limits", "Acme", "--per-second", "5", "--per-minute", "1000001"],
        ["create_team", "Huge", "--credits", "100000000000000000000"],
        ["create_team", "Huge", "--credits", "1000000001"],
        ["create_api_key", "Acme", "--name", "k" * 101],
    ],
)
def test_bad_input_exits_1_with_one_line_on_stderr(cli_env, argv):
    result = subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_commands_print_on_stdout_from_a_real_process(cli_env):
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "Acme"],
        cwd=ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1].startswith("iv_")


def _niceness_of_group(pgid: int) -> dict[int, int]:
    """The niceness of every live process in a process group, by pid (from /proc)."""
    from tests.harness import process_group_stats

    return {pid: int(fields[16]) for pid, fields in process_group_stats(pgid).items() if fields[0] != "Z"}


@pytest.mark.slow
def test_qcluster_runs_its_whole_cluster_at_the_configured_niceness(tmp_path):
    from tests.harness import kill_cluster, manage, project_env, start_cluster, wait_for

    env = project_env(tmp_path, GENERATOR_WORKERS="1", GENERATOR_WORKER_NICE="7")
    manage(env, "migrate", "--noinput", "-v", "0")
    cluster = start_cluster(env)
    try:
        # The command, its sentinel, the pusher, the monitor and one worker.
        assert wait_for(lambda: len(_niceness_of_group(cluster.pid)) >= 5, timeout_s=60)
        niceness = _niceness_of_group(cluster.pid)
    finally:
        kill_cluster(cluster)
    assert set(niceness.values()) == {max(7, os.getpriority(os.PRIO_PROCESS, 0))}, niceness


def test_worker_niceness_is_only_ever_raised(monkeypatch):
    from generator.management.commands import qcluster

    state = {"nice": 3}
    monkeypatch.setattr(os, "getpriority", lambda which, who: state["nice"])
    monkeypatch.setattr(os, "setpriority", lambda which, who, value: state.update(nice=value))
    assert qcluster.lower_priority(0) == 3  # 0: leave it
    assert qcluster.lower_priority(2) == 3  # never lowered (only root may)
    assert qcluster.lower_priority(10) == 10
