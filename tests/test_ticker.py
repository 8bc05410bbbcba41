"""The ticker: finders run every tick, one failing finder does not stop the others, and
`manage.py qcluster` runs the ticker thread beside django-q2's cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import get_commands

from generator import tasks
from generator.services import ticker

ROOT = Path(__file__).resolve().parent.parent
CALLS: list[object] = []
SEEN = threading.Event()


def finder_counting(*, now) -> int:
    CALLS.append(now)
    SEEN.set()
    return 2


def finder_broken(*, now) -> int:
    raise RuntimeError("a bug in one finder")


@pytest.fixture(autouse=True)
def _fresh_calls(monkeypatch):
    CALLS.clear()
    SEEN.clear()
    monkeypatch.setattr(ticker, "FINDERS", ("tests.test_ticker.finder_broken", "tests.test_ticker.finder_counting"))


def test_a_tick_runs_every_finder_with_the_same_moment_even_when_one_fails(caplog):
    handed_out = ticker.ticker_tick()
    assert handed_out == {"tests.test_ticker.finder_broken": 0, "tests.test_ticker.finder_counting": 2}
    assert len(CALLS) == 1
    assert "tests.test_ticker.finder_broken failed" in caplog.text


def test_the_fallback_task_reports_what_each_finder_handed_out():
    assert tasks.tick_task() == "finder_broken=0 finder_counting=2"


@pytest.mark.django_db(transaction=True)
def test_the_ticker_thread_keeps_ticking_until_stopped():
    clock = ticker.Ticker(interval_s=0.02)
    clock.start()
    try:
        deadline = time.monotonic() + 10
        while len(CALLS) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        clock.stop()
    assert len(CALLS) >= 3
    assert not clock.is_alive()
    stopped_at = len(CALLS)
    time.sleep(0.1)
    assert len(CALLS) == stopped_at


def test_our_qcluster_command_shadows_django_q_s():
    assert get_commands()["qcluster"] == "generator"


@pytest.mark.slow
def test_manage_qcluster_runs_the_ticker_and_stops_with_it_on_sigint(tmp_path):
    db = tmp_path / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(SQLITE_PATH=str(db), GENERATOR_DATA_DIR=str(tmp_path / "data"), DEBUG="1", GENERATOR_WORKERS="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert worker.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = worker.stdout.readline()
            lines.append(line)
            if "ticker running every" in line:
                break
        assert any("ticker running every 1.00 s" in line for line in lines), "".join(lines)
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
