"""fal.ai's queue API on loopback, following its documented shapes (generator/upstream/fal.py quotes them).

Use it on a tests.loopback.LoopbackServer whose port the fetcher may reach
(GENERATOR_FETCH_ALLOW_HOSTS; the `loopback` fixture does that), with the connection's base_url
set to the server:

    fake = FakeFal(loopback)                          # serves every shipped model + JWKS
    make_fal_connection(team, fake, model=MODEL)      # an EngineConnection on the fake

Switches (set any time; the handler threads read them under a lock):
- `job_seconds`: each job stays IN_QUEUE for `queue_seconds`, then IN_PROGRESS until
  `job_seconds` after its submit (wall clock, every job in parallel: the e2e benchmark's
  "100 jobs taking 20 s each"). 0 (default): looks decide instead, `queue_looks` answers
  IN_QUEUE (queue_position counting down from `queue_looks - 1`), then `progress_looks`
  IN_PROGRESS, then COMPLETED.
- `outcome`: "video" (a real H.264 MP4 of `video_seconds`), "failed" (COMPLETED with `error`,
  the result a 422 with `detail`), "not_video" (HTML), "oversized" (`oversized_bytes` of
  video/mp4 that is not one), "redirect_private" (the result URL 302s to 127.0.0.1:9, a port
  outside the allow-list), "no_video" (an output without a video).
- `push(kind, route, times=1)`: the next answers of one endpoint ("submit", "status",
  "result", "cancel", "video", "jwks") are these routes: 429 with Retry-After
  (`rate_limited`), 500s (`server_error`), a delay past the client's deadline (`stall`).
- Webhooks: the fake signs with its own ED25519 key and serves the JWKS at
  /.well-known/jwks.json (where FalProvider looks when the connection has a base_url).
  `webhook(request_id)` gives (headers, body) as fal would send them; `bad_signature=True`
  signs with a key not in the JWKS, `timestamp=` forges its age. `auto_webhooks = True` makes
  the fake POST that webhook to the submit's `fal_webhook` URL once the job completes
  (job_seconds > 0 only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from generator.upstream.fal import APP_NAMESPACES, TEMPLATES
from tests.loopback import LoopbackServer, Route, Seen
from tests.test_upstream_claid import mp4_bytes

KEY = "fal-key-id:fal-key-secret"
MODEL = "fal-ai/kling-video/v2.1/standard/image-to-video"
USER_ID = "fake-fal-user"
KINDS = ("submit", "status", "result", "cancel", "video", "jwks")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Route:
    return Route(
        status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )


def rate_limited(retry_after: int = 3) -> Route:
    return _json(429, {"detail": "Too many requests"}, {"Retry-After": str(retry_after)})


def server_error(status: int = 500) -> Route:
    return _json(status, {"detail": "Internal Server Error"})


def stall(seconds: float) -> Route:
    """An answer that comes only after `seconds` (past the client's deadline: a timeout)."""
    return Route(status=200, body=b"{}", headers={"Content-Type": "application/json"}, delay_s=seconds)


@dataclass
class FalJob:
    request_id: str
    model: str
    app: str
    body: dict
    submitted: float
    webhook_url: str = ""
    looks: int = 0
    cancelled: bool = False
    webhook_sent: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _app_of(model: str) -> str:
    segments = model.split("/")
    return "/".join(segments[: 3 if segments[0] in APP_NAMESPACES else 2])


class FakeFal:
    def __init__(self, server: LoopbackServer, *, key: str = KEY, models: tuple[str, ...] = ()) -> None:
        self.server = server
        self.key = key
        self.lock = threading.Lock()
        self.jobs: dict[str, FalJob] = {}
        self.order: list[str] = []
        self.script: dict[str, list[Route]] = {kind: [] for kind in KINDS}
        self.cancels: list[str] = []
        self.delivered: list[tuple[str, int]] = []  # (request id, our answer's status) of auto webhooks
        # Switches.
        self.job_seconds = 0.0
        self.queue_seconds = 0.0
        self.queue_looks = 0
        self.progress_looks = 1
        self.outcome = "video"
        self.error = "Unprocessable image: the subject could not be found"
        self.video_seconds = 5.0
        self.oversized_bytes = 3 * 1024 * 1024
        self.auto_webhooks = False
        self._mp4 = mp4_bytes
        self._videos: dict[float, bytes] = {}
        self.signing_key = Ed25519PrivateKey.generate()
        self.kid = "fake-fal-key-1"
        server.routes["/.well-known/jwks.json"] = self._jwks
        server.fallback = self._unknown
        for model in (*TEMPLATES, *models):
            self.serve_model(model)

    # --- what tests read ------------------------------------------------------------------------

    def url(self) -> str:
        """The connection's base_url."""
        return self.server.url("").rstrip("/")

    def submits(self) -> list[FalJob]:
        with self.lock:
            return [self.jobs[request_id] for request_id in self.order]

    def last(self) -> FalJob:
        return self.submits()[-1]

    def push(self, kind: str, route: Route, times: int = 1) -> None:
        assert kind in KINDS, kind
        with self.lock:
            self.script[kind].extend([route] * times)

    def serve_model(self, model: str) -> None:
        self.server.routes[f"/{model}"] = lambda seen, model=model: self._submit(seen, model)

    # --- the queue ------------------------------------------------------------------------------

    def _scripted(self, kind: str) -> Route | None:
        with self.lock:
            return self.script[kind].pop(0) if self.script[kind] else None

    def _refused(self, seen: Seen) -> Route | None:
        if seen.headers.get("Authorization") != f"Key {self.key}":
            return _json(401, {"detail": "Invalid Key authorization header: the key is not valid"})
        return None

    def _unknown(self, seen: Seen) -> Route:
        """A request id the queue does not hold: the key is checked first, then 404."""
        if "/requests/" in urlsplit(seen.path).path:
            return self._refused(seen) or _json(404, {"detail": "Request not found"})
        return Route(status=404, body=b"not found")

    def _gate(self, seen: Seen, kind: str, method: str = "") -> Route | None:
        """What answers before the endpoint itself: a wrong method, a scripted answer, a refused key."""
        if method and seen.method != method:
            return _json(405, {"detail": "Method Not Allowed"})
        return self._scripted(kind) or self._refused(seen)

    def _submit(self, seen: Seen, model: str) -> Route:
        if (gated := self._gate(seen, "submit", "POST")) is not None:
            return gated
        try:
            body = json.loads(seen.body or b"{}")
        except ValueError:
            return _json(422, {"detail": "body is not JSON"})
        if not isinstance(body, dict) or (model in TEMPLATES and "image_url" not in body):
            return _json(422, {"detail": [{"loc": ["body", "image_url"], "msg": "field required"}]})
        query = parse_qs(urlsplit(seen.path).query)
        request_id = str(uuid.uuid4())
        app = _app_of(model)
        job = FalJob(
            request_id, model, app, body, time.monotonic(), (query.get("fal_webhook") or [""])[0], headers=seen.headers
        )
        base = self.server.url(f"/{app}/requests/{request_id}")
        with self.lock:
            self.jobs[request_id] = job
            self.order.append(request_id)
        routes = self.server.routes
        routes[f"/{app}/requests/{request_id}/status"] = lambda seen: self._status(seen, job)
        routes[f"/{app}/requests/{request_id}"] = lambda seen: self._result(seen, job)
        routes[f"/{app}/requests/{request_id}/cancel"] = lambda seen: self._cancel(seen, job)
        routes[f"/files/{request_id}/output.mp4"] = lambda seen: self._video(job)
        if self.auto_webhooks and job.webhook_url and self.job_seconds > 0:
            timer = threading.Timer(self.job_seconds, self._deliver, args=(job,))
            timer.daemon = True
            timer.start()
        return _json(
            200,
            {
                "request_id": request_id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            },
        )

    def _state(self, job: FalJob, *, look: bool) -> tuple[str, int]:
        """(status, queue_position) of a job now; a status look advances a look-driven job."""
        with self.lock:
            if job.cancelled:
                return "CANCELLED", 0
            if self.job_seconds > 0:
                elapsed = time.monotonic() - job.submitted
                if elapsed < self.queue_seconds:
                    return "IN_QUEUE", 0
                return ("IN_PROGRESS", 0) if elapsed < self.job_seconds else ("COMPLETED", 0)
            seen = job.looks
            if look:
                job.looks += 1
            if seen < self.queue_looks:
                return "IN_QUEUE", self.queue_looks - seen - 1
            return ("IN_PROGRESS", 0) if seen < self.queue_looks + self.progress_looks else ("COMPLETED", 0)

    def _status(self, seen: Seen, job: FalJob) -> Route:
        if (gated := self._gate(seen, "status")) is not None:
            return gated
        status, position = self._state(job, look=True)
        base = self.server.url(f"/{job.app}/requests/{job.request_id}")
        if status == "IN_QUEUE":
            return _json(202, {"status": status, "queue_position": position, "response_url": base})
        if status == "IN_PROGRESS":
            return _json(202, {"status": status, "response_url": base, "logs": None})
        answer: dict[str, Any] = {"status": "COMPLETED", "response_url": base, "logs": None, "metrics": {}}
        if status == "CANCELLED":
            answer.update(error="Request was cancelled", error_type="request_cancelled")
        elif self.outcome == "failed":
            answer.update(error=self.error, error_type="validation_error")
        else:
            answer["metrics"] = {"inference_time": round(time.monotonic() - job.submitted, 3)}
        return _json(200, answer)

    def output(self, job: FalJob) -> tuple[int, dict]:
        """The model's output at the response_url (what a webhook's payload carries too)."""
        if self.outcome == "failed":
            return 422, {"detail": [{"loc": ["body", "image_url"], "msg": self.error, "type": "value_error"}]}
        if self.outcome == "no_video":
            return 200, {"seed": 42}
        url = self.server.url(f"/files/{job.request_id}/output.mp4")
        return 200, {"video": {"url": url, "content_type": "video/mp4", "file_name": "output.mp4"}, "seed": 42}

    def _result(self, seen: Seen, job: FalJob) -> Route:
        if (gated := self._gate(seen, "result")) is not None:
            return gated
        status, _position = self._state(job, look=False)
        if status in {"IN_QUEUE", "IN_PROGRESS"}:
            return _json(400, {"detail": "Request is still in progress"})
        if status == "CANCELLED":
            return _json(400, {"detail": "Request was cancelled"})
        return _json(*self.output(job))

    def _cancel(self, seen: Seen, job: FalJob) -> Route:
        if (gated := self._gate(seen, "cancel", "PUT")) is not None:
            return gated
        status, _position = self._state(job, look=False)
        with self.lock:
            self.cancels.append(job.request_id)
            if status == "COMPLETED":
                return _json(400, {"status": "ALREADY_COMPLETED"})
            job.cancelled = True
        return _json(202, {"status": "CANCELLATION_REQUESTED"})

    def _video(self, job: FalJob) -> Route:
        scripted = self._scripted("video")
        if scripted is not None:
            return scripted
        if self.outcome == "not_video":
            return Route(body=b"<html><body>not a video</body></html>", headers={"Content-Type": "text/html"})
        if self.outcome == "oversized":
            return Route(body=b"\0" * self.oversized_bytes, headers={"Content-Type": "video/mp4"})
        if self.outcome == "redirect_private":
            return Route(status=302, headers={"Location": "http://127.0.0.1:9/private.mp4"})
        with self.lock:
            if self.video_seconds not in self._videos:
                self._videos[self.video_seconds] = self._mp4(seconds=self.video_seconds)
            data = self._videos[self.video_seconds]
        return Route(body=data, headers={"Content-Type": "video/mp4"})

    # --- webhooks -------------------------------------------------------------------------------

    def _jwks(self, seen: Seen) -> Route:
        scripted = self._scripted("jwks")
        if scripted is not None:
            return scripted
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return _json(
            200, {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}
        )

    def webhook(
        self, request_id: str, *, bad_signature: bool = False, timestamp: int | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The POST fal makes to fal_webhook when a job ends: its headers and raw body."""
        job = self.jobs[request_id]
        status, output = self.output(job)
        body_obj: dict[str, Any] = {"request_id": request_id, "gateway_request_id": request_id}
        if status == 200:
            body_obj.update(status="OK", payload=output)
        else:
            body_obj.update(status="ERROR", error=f"Invalid status code: {status}", payload=output)
        body = json.dumps(body_obj).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        message = "\n".join([request_id, USER_ID, stamp, hashlib.sha256(body).hexdigest()]).encode()
        key = Ed25519PrivateKey.generate() if bad_signature else self.signing_key
        headers = {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": USER_ID,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": key.sign(message).hex(),
        }
        return headers, body

    def deliver(self, request_id: str, **kwargs) -> int:
        """POST the job's webhook to its fal_webhook URL (a loopback live server); return the answer's status."""
        job = self.jobs[request_id]
        headers, body = self.webhook(request_id, **kwargs)
        answer = httpx.post(job.webhook_url, content=body, headers=headers, timeout=10)
        with self.lock:
            job.webhook_sent = True
            self.delivered.append((request_id, answer.status_code))
        return answer.status_code

    def _deliver(self, job: FalJob) -> None:
        try:
            self.deliver(job.request_id)
        except httpx.HTTPError:
            with self.lock:
                self.delivered.append((job.request_id, 0))


def make_fal_connection(
    team, fake: FakeFal, *, name: str = "fal", model: str = MODEL, price_5s: int = 40, price_10s: int = 80, **parameters
):
    """An EngineConnection on the fake (saved directly, as the API would after its test call)."""
    from generator.crypto import encrypt_json
    from generator.models import EngineConnection

    return EngineConnection.objects.create(
        team=team,
        name=name,
        type="fal",
        parameters={"model": model, "base_url": fake.url(), **parameters},
        secrets_encrypted=encrypt_json({"api_key": fake.key}),
        price_5s=price_5s,
        price_10s=price_10s,
    )
