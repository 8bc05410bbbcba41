"""Helpers several test modules share (their fixtures are in conftest.py).

- bearer(key): the test client's Authorization header.
- run_together(count, work): the same work from `count` threads released at one instant.
- project_env / manage / manage_shell: run manage.py in a subprocess over a SQLite file of the
  test's own, as an operator, a web server or a worker would.
- start_cluster / kill_cluster: a real `manage.py qcluster` in its own process group, and SIGKILL for all of it.
- Instance(tmp, **env): a whole instance of the service (web server and worker) on a free loopback port.
- process_group_stats(pgid): /proc's stat of each process in a process group (a cluster's).
- wait_for(predicate, timeout_s): poll until true; sqlite_rows(db, sql, *args): read that SQLite file as dicts.
- browse(client, storage, **params) / thumbnail(client, storage, key): the dashboard's storage browser.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from django.db import connection
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
# Settings a parent test run may carry that must not leak into a subprocess project.
_INHERITED_OUT = {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH"}


def bearer(key: str) -> dict[str, str]:
    """Return the Django test client's keyword for `Authorization: Bearer <key>`."""
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def run_together(count: int, work: Callable[[], T], *, timeout_s: float = 120) -> list[T | BaseException]:
    """Run `work` in `count` threads released together by a barrier; return each result or the error it raised.

    Each thread closes its own database connection, so PostgreSQL sees `count` real sessions.
    """
    barrier = threading.Barrier(count)
    results: list[T | BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            barrier.wait(timeout=30)
            try:
                outcome: T | BaseException = work()
            except Exception as exc:  # returned, so the test can say which outcome it expected
                outcome = exc
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_s)
    return results


def project_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Return an environment for manage.py over tmp_path: its own SQLite file, data, media and storage roots."""
    env = {key: value for key, value in os.environ.items() if key not in _INHERITED_OUT}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "GENERATOR_DATA_DIR": str(tmp_path),
            "GENERATOR_LOCAL_STORAGE_ROOT": str(tmp_path / "storages"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            **extra,
        }
    )
    return env


def manage(env: dict[str, str], *args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    """Run `manage.py <args>` in a subprocess; fail the test with its error output if it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def manage_shell(env: dict[str, str], code: str, *, timeout_s: float = 180) -> str:
    """Run Python in `manage.py shell` and return the last line it printed ("" if none)."""
    lines = manage(env, "shell", "-c", code, timeout_s=timeout_s).stdout.strip().splitlines()
    return lines[-1] if lines else ""


# A cluster that tests kill: one worker, and a lease short enough to run out while the test waits.
SHORT_LEASES = {
    "GENERATOR_LEASE_S": "3",
    "GENERATOR_LEASE_RENEW_S": "1",
    "GENERATOR_WORKERS": "1",
    "Q_TIMEOUT": "120",
    "Q_RETRY": "180",
}


def start_cluster(env: dict[str, str], *, log: IO[str] | None = None) -> subprocess.Popen:
    """Start `manage.py qcluster` in a session of its own, so SIGKILL reaches its sentinel and workers.

    Its output goes to `log` (an open file), else nowhere.
    """
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
    )


def kill_cluster(process: subprocess.Popen) -> None:
    """SIGKILL the whole cluster, as a crash or an out-of-memory kill would, and reap it."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def process_group_stats(pgid: int) -> dict[int, list[str]]:
    """Each process of a process group (zombies too), by pid: the fields of /proc/<pid>/stat after
    "pid (comm)", from `state` on (so ppid is [1], pgrp [2], utime [11], nice [16])."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[2]) == pgid:
            found[int(entry.name)] = fields
    return found


def wait_for(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `predicate` until it is true (True) or `timeout_s` has passed (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False


def sqlite_rows(db: Path, sql: str, *args: object) -> list[dict]:
    """Rows of a query on a subprocess's SQLite file, as dicts (it may be writing: wait for its lock)."""
    with sqlite3.connect(db, timeout=20) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql, args)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Instance:
    """One instance of this service on loopback, as an operator runs it: its own SQLite file, data,
    media and storage folders, a web server (`runserver`) and a worker (`qcluster`, with its ticker),
    each in a process group of its own; both write to <tmp>/processes.log.
    """

    def __init__(self, tmp: Path, **env: str) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp, self.db, self.port = tmp, tmp / "db.sqlite3", free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = project_env(tmp, DEBUG="1", GENERATOR_PUBLIC_URL=self.base, PYTHONUNBUFFERED="1", **env)
        manage(self.env, "migrate", "-v", "0")
        self.logs = open(tmp / "processes.log", "a")  # noqa: SIM115 - closed in stop()
        self.web: subprocess.Popen | None = None
        self.cluster: subprocess.Popen | None = None

    def shell(self, code: str) -> str:
        return manage_shell(self.env, code)

    def start(self) -> None:
        self.web = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT,
            env=self.env,
            stdout=self.logs,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.start_cluster()
        assert wait_for(self._serving, 60), self.log_tail()

    def start_cluster(self) -> None:
        self.cluster = start_cluster(self.env, log=self.logs)

    def kill_cluster(self) -> None:
        assert self.cluster is not None
        kill_cluster(self.cluster)
        self.cluster = None

    def _serving(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def log_tail(self) -> str:
        self.logs.flush()
        return (self.tmp / "processes.log").read_text()[-4000:]

    def stop(self) -> None:
        for process in (self.cluster, self.web):
            if process is not None and process.poll() is None:
                kill_cluster(process)
        self.logs.close()


def browse(client: Client, storage, *, htmx: bool = True, **params: str) -> str:
    """The storage browser's page (or, as htmx asks, its fragment) for `params` (folder, pick), as text."""
    headers = {"HX-Request": "true"} if htmx else {}
    url = reverse("generator:storage-browse", args=[storage.pk])
    return client.get(url, params, headers=headers).content.decode()


def thumbnail(client: Client, storage, key: str):
    """The storage browser's thumbnail of the object `key`."""
    return client.get(reverse("generator:storage-thumbnail", args=[storage.pk]), {"key": key})
