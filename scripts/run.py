"""`make run`: migrate, seed the demo team, start the web server and one worker, stop both on Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("GENERATOR_DATA_DIR", ROOT / "data"))
PYTHON = sys.executable


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
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, check=True, text=True, capture_output=capture
    )
    return result.stdout if capture else ""


def main() -> int:
    ensure_secret_key()
    port = os.environ.get("PORT", "8000")
    os.environ.setdefault("GENERATOR_PUBLIC_URL", f"http://127.0.0.1:{port}")
    manage("migrate", "--noinput", "-v", "0")
    seed = manage("seed_demo", capture=True)
    manage("setup_schedules")
    web = subprocess.Popen(
        [
            PYTHON, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--threads", "4", "--timeout", "60", "--log-level", "warning",
        ],
        cwd=ROOT,
    )
    worker = subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT)
    time.sleep(1.5)
    print("\n" + "=" * 64)
    print(f"Image-to-Video is running at http://127.0.0.1:{port}/")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
