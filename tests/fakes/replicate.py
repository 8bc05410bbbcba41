"""Replicate's predictions API on loopback, in the shapes its docs give (quoted in generator/upstream/replicate.py).

Routes: `POST /v1/models/{owner}/{name}/predictions` (201, the prediction with `urls.get` and
`urls.cancel`), `GET /v1/predictions/{id}`, `POST /v1/predictions/{id}/cancel`, `GET /v1/account`,
`GET /v1/webhooks/default/secret` (`{"key": "whsec_..."}`); every API call needs
`Authorization: Bearer <token>` (401 `{"detail": ...}` otherwise). The result is a real MP4 served
at `/delivery/{id}/output.mp4`. Webhooks are signed here the Standard Webhooks way with the
fake's own secret, by hand (hmac), so the provider's verifier is checked against an independent
signer rather than against itself.

Switches: `running_looks` (slow predictions: looks answered starting, then processing with
`logs`), `create_route` / `poll_route` (a scripted answer: 429 with Retry-After, 500, a delay for
timeouts), `outcome` (`succeeded`, `failed` with `error`, `canceled`), `output_list`, `video` (the
result route: not a video, a redirect...), `foreign_urls` (urls.get/cancel on another origin),
`account_route` (a refused key), and `signed_webhook(..., secret=...)` for a bad signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import time
from collections.abc import Callable
from typing import Any

from tests.loopback import Route, Seen
from tests.test_upstream_claid import mp4_bytes
from tests.test_worker import png_bytes

TOKEN = "r8_fake-replicate-token-0123456789"
PROGRESS_LOGS = "Loading pipeline...\n 20%|██        | 4/20 [00:04<00:16]\n 45%|████▌     | 9/20 [00:10<00:12]"


def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature` per the Standard Webhooks scheme: v1,<base64 HMAC-SHA256 of id.timestamp.body>."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Route:
    return Route(
        status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )


class FakeReplicate:
    def __init__(self, server, *, models: tuple[str, ...], token: str = TOKEN) -> None:
        self.server = server
        self.token = token
        self.secret = webhook_secret()
        self.running_looks = 1
        self.logs = PROGRESS_LOGS
        self.outcome = "succeeded"
        self.error = "E005: the input image did not pass the safety check"
        self.output_list = False
        self.foreign_urls = False
        self.create_route: Route | None = None
        self.poll_route: Route | None = None
        self.account_route: Route | None = None
        self.video = Route(body=mp4_bytes(), headers={"Content-Type": "video/mp4"})
        self.predictions: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        server.routes["/v1/account"] = self._account
        server.routes["/v1/webhooks/default/secret"] = self._route(lambda seen: _json(200, {"key": self.secret}))
        for model in models:
            server.routes[f"/v1/models/{model}/predictions"] = self._route(self._create)
        server.routes["/photo.png"] = Route(body=png_bytes((400, 300)), headers={"Content-Type": "image/png"})

    # --- what tests look at --------------------------------------------------------------------

    def creates(self) -> list[Seen]:
        return [seen for seen in self.server.requests if seen.method == "POST" and seen.path.startswith("/v1/models/")]

    def created_bodies(self) -> list[dict]:
        return [json.loads(seen.body) for seen in self.creates()]

    def calls_to(self, path: str) -> int:
        return sum(1 for seen in self.server.requests if seen.path == path)

    def signed_webhook(
        self, prediction_id: str, *, secret: str | None = None, age_s: int = 0
    ) -> tuple[dict[str, str], bytes]:
        """The `completed` webhook of a prediction: its object as body, signed with `secret` (the fake's own)."""
        body = json.dumps(self._object(prediction_id)).encode()
        msg_id, timestamp = f"msg_{prediction_id}_{time.time_ns()}", int(time.time()) - age_s
        signature = sign(secret or self.secret, msg_id=msg_id, timestamp=timestamp, body=body)
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
        return headers, body

    # --- the API ---------------------------------------------------------------------------------

    def _route(self, answer: Callable[[Seen], Route]) -> Callable[[Seen], Route]:
        """An API route: 401 without the token, else `answer`."""

        def route(seen: Seen) -> Route:
            return self._refused(seen) or answer(seen)

        return route

    def _refused(self, seen: Seen) -> Route | None:
        if seen.headers.get("Authorization") != f"Bearer {self.token}":
            return _json(
                401,
                {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401},
            )
        return None

    def _account(self, seen: Seen) -> Route:
        if self.account_route is not None:
            return self.account_route
        return self._refused(seen) or _json(200, {"type": "user", "username": "acme", "name": "Acme Studio"})

    def _urls(self, prediction_id: str) -> dict[str, str]:
        origin = "http://127.0.0.1:9" if self.foreign_urls else self.server.url("").rstrip("/")
        get = f"{origin}/v1/predictions/{prediction_id}"
        return {"get": get, "cancel": f"{get}/cancel", "web": f"https://replicate.com/p/{prediction_id}"}

    def _create(self, seen: Seen) -> Route:
        if self.create_route is not None:
            return self.create_route
        body = json.loads(seen.body)
        if not isinstance(body.get("input"), dict):
            return _json(422, {"title": "Input validation failed", "detail": "input is required", "status": 422})
        prediction_id = f"rp{next(self._ids)}qz8m4"
        self.predictions[prediction_id] = {
            "model": seen.path.split("/")[3] + "/" + seen.path.split("/")[4],
            "input": body["input"],
            "webhook": body.get("webhook"),
            "status": "starting",
            "looks": 0,
            "urls": self._urls(prediction_id),
        }
        self.server.routes[f"/v1/predictions/{prediction_id}"] = self._route(self._get)
        self.server.routes[f"/v1/predictions/{prediction_id}/cancel"] = self._route(self._cancel)
        self.server.routes[f"/delivery/{prediction_id}/output.mp4"] = lambda seen: self.video
        return _json(201, self._object(prediction_id))

    def _object(self, prediction_id: str) -> dict[str, Any]:
        record = self.predictions[prediction_id]
        status = record["status"]
        output: Any = None
        if status == "succeeded":
            url = self.server.url(f"/delivery/{prediction_id}/output.mp4")
            output = [self.server.url(f"/delivery/{prediction_id}/poster.jpg"), url] if self.output_list else url
        return {
            "id": prediction_id,
            "model": record["model"],
            "version": "hidden",
            "input": record["input"],
            "logs": self.logs if status == "processing" else "",
            "output": output,
            "data_removed": False,
            "error": self.error if status == "failed" else None,
            "status": status,
            "source": "api",
            "created_at": "2026-12-02T01:00:00.000Z",
            "started_at": None if status == "starting" else "2026-12-02T01:00:02.000Z",
            "urls": record["urls"],
            "metrics": {"predict_time": 12.5} if status in {"succeeded", "failed", "canceled"} else {},
        }

    def _get(self, seen: Seen) -> Route:
        if self.poll_route is not None:
            return self.poll_route
        prediction_id = seen.path.split("?", 1)[0].rsplit("/", 1)[1]
        record = self.predictions[prediction_id]
        if record["status"] in {"starting", "processing"}:
            record["looks"] += 1
            if record["looks"] > self.running_looks:
                record["status"] = self.outcome
            else:
                record["status"] = "starting" if record["looks"] == 1 else "processing"
        return _json(200, self._object(prediction_id))

    def _cancel(self, seen: Seen) -> Route:
        prediction_id = seen.path.split("?", 1)[0].split("/")[3]
        record = self.predictions[prediction_id]
        if record["status"] in {"starting", "processing"}:
            record["status"] = "canceled"
        return _json(200, self._object(prediction_id))
