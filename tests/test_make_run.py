"""`make run`'s launcher: refuses a busy port, and really serves the demo login and API key."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    env.update(GENERATOR_DATA_DIR=str(tmp_path / "data"), PORT=str(port), GENERATOR_WORKERS="1")
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_launcher_refuses_a_busy_port_with_exit_1(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=_env(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} is not free" in result.stderr


@pytest.mark.slow
def test_launcher_serves_the_demo_login_and_key_then_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=_env(tmp_path, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        banner = "".join(lines)
        assert f"http://127.0.0.1:{port}/" in banner, banner
        email = re.search(r"^email: (\S+)", banner, re.M).group(1)
        key = re.search(r"^api key: (\S+)", banner, re.M).group(1)
        assert re.search(r"^password: \S+", banner, re.M)
        assert email == "demo@example.com"
        # What the README promises is what the launcher prints: the product's name and the demo balance.
        assert "Motionshop is running at" in banner
        balance = re.search(r"^team: Demo \(balance (\d+)\)", banner, re.M).group(1)
        assert f"has {balance} credits" in (ROOT / "README.md").read_text()
        login = urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10)
        assert login.status == 200
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/account", headers={"Authorization": f"Bearer {key}"}
        )
        account = urllib.request.urlopen(request, timeout=10).read().decode()
        assert '"team": "Demo"' in account
        assert (tmp_path / "data" / "secret_key").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0


def test_the_readme_names_the_product_as_the_pages_do_and_states_the_demo_balance():
    from generator.management.commands.seed_demo import START_CREDITS

    readme = (ROOT / "README.md").read_text()
    brand = re.search(r'<span class="brand-name">([^<]+)</span>', (ROOT / "templates" / "base.html").read_text())
    assert readme.splitlines()[0] == f"# {brand.group(1)}"
    assert re.search(r"The demo team\s+has (\d+) credits", readme).group(1) == str(START_CREDITS)
    assert f'print(f"{brand.group(1)} is running at' in (ROOT / "scripts" / "run.py").read_text()
