"""Poll latency while videos render: p50/p95 of GET /v1/video/generate/{id}, idle vs rendering, nice 0 vs 10.

Starts the app as `make run` does (the same gunicorn command, on loopback, a fresh SQLite database
and data folder, the demo team of `seed_demo`), then 50 concurrent API clients poll one job's
status for a while in three phases, in one run:

  idle            no worker running
  render nice 0   a `qcluster` with GENERATOR_WORKER_NICE=0 rendering 3 videos at once
  render nice 10  the same with GENERATOR_WORKER_NICE=10 (the default)

and prints each phase's p50/p95 and the ratios. The machine's other load counts: say how busy it
was when quoting the figures.
Usage: .venv/bin/python bench/poll_latency.py [--clients 50] [--seconds 15] [--port 8765]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.run import wait_until_serving, web_command  # noqa: E402

RENDERS = 3
# 10 s of 1080p: long enough for a render to outlast a phase on two cores.
VIDEO = {"prompt": "slow zoom in, light sweep", "duration": 10, "aspect_ratio": "16:9", "resolution": "1080p"}


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, text=True, capture_output=True
    )
    return result.stdout


class Api:
    """A keep-alive HTTP/1.1 client of the API on loopback."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.headers = port, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        payload = json.dumps(body) if body is not None else None
        for attempt in (1, 2):  # gunicorn closes a keep-alive connection after 2 idle seconds: reconnect once
            try:
                self.conn.request(method, path, body=payload, headers=self.headers)
                response = self.conn.getresponse()
                return response.status, json.loads(response.read() or b"{}")
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def poll_phase(port: int, key: str, job_id: int, *, clients: int, seconds: float) -> list[float]:
    """`clients` threads poll one job for `seconds`; return every request's latency in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        api = Api(port, key)
        mine = []
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                status, _ = api.call("GET", f"/v1/video/generate/{job_id}")
            except (OSError, http.client.HTTPException):
                continue
            if status == 200:
                mine.append((time.perf_counter() - start) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def jobs(db: str, ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """(status, stage, errors) of these jobs, read from the app's SQLite file (the API does not show the stage)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT id, status, stage, errors FROM generator_generation WHERE id IN ({marks})", ids)
        return {row[0]: (row[1], row[2], row[3]) for row in rows}


def submit(api: Api, photo: str) -> int:
    status, body = api.call("POST", "/v1/video/generate", {"input": f"storage://samples/{photo}", "options": VIDEO})
    assert status == 200, body
    return body["data"]["id"]


def render_phase(env, port, key, poll_id, *, nice: int, clients: int, seconds: float) -> tuple[list[float], float]:
    """Start a cluster at `nice`, keep 3 videos rendering, poll meanwhile; return latencies and renders seen."""
    db = env["DATABASE_URL"].removeprefix("sqlite:///")
    api = Api(port, key)
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env={**env, "GENERATOR_WORKER_NICE": str(nice), "GENERATOR_WORKERS": str(RENDERS)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        photos = ("astronaut.png", "coffee.png", "product.png")
        active = [submit(api, photo) for photo in photos]
        deadline = time.monotonic() + 120
        # Wait until all three are past fetching and decoding, i.e. the encoders are running.
        while time.monotonic() < deadline and not all(
            stage == "rendering" for _, stage, _ in jobs(db, active).values()
        ):
            time.sleep(0.2)
        samples: list[int] = []
        sampling = threading.Event()

        def top_up() -> None:
            """Once a second: count the renders, and replace a finished one so that three keep going."""
            own = Api(port, key)
            while not sampling.wait(1.0):
                states = jobs(db, active)
                samples.append(sum(1 for _, stage, _ in states.values() if stage == "rendering"))
                for index, job in enumerate(list(active)):
                    status, _, errors = states[job]
                    if status == "ERROR":
                        raise SystemExit(f"render {job} failed: {errors}")
                    if status != "PROCESSING":
                        active[index] = submit(own, photos[index])

        sampler = threading.Thread(target=top_up)
        sampler.start()
        latencies = poll_phase(port, key, poll_id, clients=clients, seconds=seconds)
        sampling.set()
        sampler.join()
        renders = statistics.mean(samples) if samples else 0.0
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()
        # What this phase left queued or half-rendered must not render in the next one.
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, conn:
            conn.execute(
                "UPDATE generator_generation SET status = 'CANCELLED', stage = 'cancelled' WHERE status = 'PROCESSING'"
            )
    return latencies, renders


def summary(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", args.port)) == 0:
            print(f"port {args.port} is in use; choose another with --port", file=sys.stderr)
            return 1
    data = tempfile.mkdtemp(prefix="poll-bench-")
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "DEBUG": "1",  # as `make run`
            "SECRET_KEY": secrets.token_urlsafe(50),
            "GENERATOR_DATA_DIR": data,
            "DATABASE_URL": f"sqlite:///{data}/db.sqlite3",
            "MEDIA_ROOT": f"{data}/media",
            "GENERATOR_LOCAL_STORAGE_ROOT": f"{data}/storages",
            "GENERATOR_PUBLIC_URL": f"http://127.0.0.1:{args.port}",
        }
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    seeded = manage(env, "seed_demo")
    key = next(line.split(": ", 1)[1] for line in seeded.splitlines() if line.startswith("api key: "))
    manage(env, "grant_credits", "Demo", "100000", "--reason", "poll latency bench")
    manage(env, "set_rate_limits", "Demo", "--per-second", "100", "--per-minute", "1000")
    manage(env, "setup_schedules")
    web = subprocess.Popen(web_command(str(args.port)), cwd=ROOT, env=env, start_new_session=True)
    try:
        if not wait_until_serving(args.port, web):
            print("the web server did not start", file=sys.stderr)
            return 1
        api = Api(args.port, key)
        status, body = api.call(
            "POST", "/v1/video/generate", {"input": "storage://samples/chelsea.png", "options": VIDEO}
        )
        assert status == 200, body
        poll_id = body["data"]["id"]  # never rendered: no cluster runs while it is queued alone
        poll_phase(args.port, key, poll_id, clients=args.clients, seconds=2)  # warm both gunicorn workers
        results = {"idle": summary(poll_phase(args.port, key, poll_id, clients=args.clients, seconds=args.seconds))}
        seen = {}
        for nice in (0, 10):
            api.call("POST", f"/v1/video/generate/{poll_id}/cancel")  # keep the polled job out of the renders
            latencies, seen[nice] = render_phase(
                env, args.port, key, poll_id, nice=nice, clients=args.clients, seconds=args.seconds
            )
            results[f"render nice {nice}"] = summary(latencies)
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
    load = os.getloadavg()
    print(f"poll latency, {args.clients} clients, {args.seconds:.0f} s per phase, {os.cpu_count()} cores")
    print(f"load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")
    print(f"{'phase':<16}{'p50 ms':>10}{'p95 ms':>10}")
    for name, (p50, p95) in results.items():
        print(f"{name:<16}{p50:>10.1f}{p95:>10.1f}")
    idle95 = results["idle"][1]
    for nice in (0, 10):
        print(
            f"p95 render nice {nice} / idle: {results[f'render nice {nice}'][1] / idle95:.2f}x ({seen[nice]:.1f} of {RENDERS} rendering on average)"
        )
    print(f"p95 nice 10 / nice 0: {results['render nice 10'][1] / results['render nice 0'][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
