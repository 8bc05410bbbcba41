"""Claid's Image-to-Video API on loopback for many jobs at once, in the shapes generator/upstream/claid.py quotes.

Routes: `GET /v1/account`; `POST /v1/video/generate` (`{"input", "options"}`, answers
`{"data": {"id", "status": "PROCESSING", "result_url"}}`); `GET /v1/video/generate/{id}`
(PROCESSING until the job is done, then DONE with `result.output_object.tmp_url`);
`POST /v1/video/generate/{id}/cancel`; the result, a real H.264 MP4, at `/tmp/{id}.mp4`. Every
API call needs `Authorization: Bearer <key>` (401 in Claid's error envelope otherwise). A
submit repeating an `Idempotency-Key` answers the job that key started, as this service's own
API does; every accepted submit is counted per key (`submits`), so a test sees a job sent twice,
and every refused one in `refused`.

Switches: `hold` (jobs stay PROCESSING until `release()`), `duration_s` (a job is DONE that long
after its submit: a slow model), `busy_after` (once that many jobs exist, a new one is refused
with 429, Claid's envelope and `Retry-After: busy_retry_after`, until `release()`), the
`/photo.png` input (400x300).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from typing import Any

from tests.loopback import Route, Seen
from tests.test_upstream_claid import mp4_bytes
from tests.test_worker import png_bytes

KEY = "claid-fake-key-0123456789"


def _json(status: int, body: Any) -> Route:
    return Route(status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


class FakeClaidJobs:
    def __init__(
        self, server, *, key: str = KEY, duration_s: float = 0.0, hold: bool = False, busy_after: int | None = None
    ) -> None:
        self.server, self.key = server, key
        self.duration_s, self.hold = duration_s, hold
        self.busy_after, self.busy_retry_after = busy_after, 4
        self.submits: Counter[str] = Counter()  # accepted POSTs per Idempotency-Key ("" for none)
        self.refused: Counter[str] = Counter()  # 429s per Idempotency-Key
        self.jobs: dict[int, dict[str, Any]] = {}
        self._by_key: dict[str, int] = {}
        self._ids = itertools.count(101)
        self._lock = threading.Lock()
        self._video = mp4_bytes()
        server.routes["/v1/account"] = lambda seen: self._refused(seen) or _json(200, {"data": {"credits": 1000}})
        server.routes["/v1/video/generate"] = self._submit
        server.routes["/photo.png"] = Route(body=png_bytes((400, 300)), headers={"Content-Type": "image/png"})

    def release(self) -> None:
        """Let every job held so far (and every later one) finish at its next look, and take new ones."""
        self.hold, self.busy_after = False, None

    def _refused(self, seen: Seen) -> Route | None:
        if seen.headers.get("Authorization") != f"Bearer {self.key}":
            return _json(401, {"error_code": 1000, "error_type": "auth", "error_message": "invalid API key"})
        return None

    def _submit(self, seen: Seen) -> Route:
        if (refused := self._refused(seen)) is not None:
            return refused
        key = seen.headers.get("Idempotency-Key", "")
        with self._lock:
            job_id = self._by_key.get(key) if key else None
            if job_id is None and self.busy_after is not None and len(self.jobs) >= self.busy_after:
                self.refused[key] += 1
                busy = {"error_code": 4290, "error_type": "rate_limit", "error_message": "Too many requests"}
                return Route(
                    status=429,
                    body=json.dumps(busy).encode(),
                    headers={"Content-Type": "application/json", "Retry-After": str(self.busy_retry_after)},
                )
            self.submits[key] += 1
            if job_id is None:
                job_id = next(self._ids)
                self._by_key[key] = job_id
                self.jobs[job_id] = {"request": json.loads(seen.body), "submitted": time.monotonic(), "looks": 0}
                self.server.routes[f"/v1/video/generate/{job_id}"] = self._poll
                self.server.routes[f"/v1/video/generate/{job_id}/cancel"] = self._cancel
                self.server.routes[f"/tmp/{job_id}.mp4"] = Route(
                    body=self._video, headers={"Content-Type": "video/mp4"}
                )
        return _json(200, {"data": self._data(job_id)})

    def _done(self, job: dict[str, Any]) -> bool:
        return not self.hold and time.monotonic() - job["submitted"] >= self.duration_s

    def _data(self, job_id: int) -> dict[str, Any]:
        job = self.jobs[job_id]
        data: dict[str, Any] = {
            "id": job_id,
            "status": job.get("status") or ("DONE" if self._done(job) else "PROCESSING"),
            "result_url": self.server.url(f"/v1/video/generate/{job_id}"),
            "errors": [],
            "result": {},
        }
        if data["status"] == "DONE":
            data["result"] = {"output_object": {"tmp_url": self.server.url(f"/tmp/{job_id}.mp4"), "ext": "mp4"}}
        return data

    def _poll(self, seen: Seen) -> Route:
        if (refused := self._refused(seen)) is not None:
            return refused
        job_id = int(seen.path.split("?", 1)[0].rsplit("/", 1)[1])
        self.jobs[job_id]["looks"] += 1
        return _json(200, {"data": self._data(job_id)})

    def _cancel(self, seen: Seen) -> Route:
        if (refused := self._refused(seen)) is not None:
            return refused
        job_id = int(seen.path.split("/")[4])
        self.jobs[job_id]["status"] = "CANCELLED"
        return _json(200, {"data": self._data(job_id)})
