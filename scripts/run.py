"""`make run`: migrate, seed the demo team, start the web server and one worker, stop both on Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("GENERATOR_DATA_DIR", ROOT / "data"))
PYTHON = sys.executable


def prepare_environment() -> None:
    """Turn DEBUG on for local use (unless set) and keep one SECRET_KEY under data/."""
    # The settings default DEBUG to off; `make run` is the local, development way to start.
    os.environ.setdefault("DEBUG", "1")
    ensure_secret_key()


def ensure_secret_key() -> None:
    """Keep one SECRET_KEY under data/ so links and sessions survive restarts."""
    if os.environ.get("SECRET_KEY"):
        return
    DATA.mkdir(parents=True, exist_ok=True)
    key_file = DATA / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    os.environ["SECRET_KEY"] = key_file.read_text().strip()


def manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until_serving(port: int, web: subprocess.Popen, timeout_s: float = 30.0) -> bool:
    """Return True once the web server accepts connections; False if it died or timed out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if web.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def web_command(port: str) -> list[str]:
    """The web server `make run` starts (bench/poll_latency.py starts the same one)."""
    return [
        PYTHON,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--timeout",
        "60",
        "--log-level",
        "warning",
    ]


def main() -> int:
    prepare_environment()
    port = os.environ.get("PORT", "8000")
    if not port.isdigit() or not port_is_free(int(port)):
        print(f"make run: port {port} is not free; choose another with PORT=...", file=sys.stderr)
        return 1
    os.environ.setdefault("GENERATOR_PUBLIC_URL", f"http://127.0.0.1:{port}")
    manage("migrate", "--noinput", "-v", "0")
    seed = manage("seed_demo", capture=True)
    manage("setup_schedules")
    web = subprocess.Popen(web_command(port), cwd=ROOT)
    worker = subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT)
    if not wait_until_serving(int(port), web):
        print("make run: the web server did not start (see the messages above)", file=sys.stderr)
        for proc in (web, worker):
            if proc.poll() is None:
                proc.terminate()
        return 1
    print("\n" + "=" * 64)
    print(f"Motionshop is running at http://127.0.0.1:{port}/")
    print(seed.strip())
    print(f"API docs: http://127.0.0.1:{port}/api/docs   Admin: http://127.0.0.1:{port}/admin/")
    print("Press Ctrl-C to stop the web server and the worker.")
    print("=" * 64 + "\n", flush=True)

    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and web.poll() is None and worker.poll() is None:
        time.sleep(0.5)
    for proc in (web, worker):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in (web, worker):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    if not stopping:
        print("make run: the web server or the worker stopped unexpectedly", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
