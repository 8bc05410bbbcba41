"""fal.ai's queue API for a named image-to-video model (docs/engines.md).

Relied on (fal's queue docs, docs.fal.ai/model-endpoints/queue and the Queue API's OpenAPI
document): "The queue functionality is exposed via standardized per-model paths under
https://queue.fal.run": `POST https://queue.fal.run/{model_id}` adds a request, with
`Authorization: Key $FAL_KEY` and the model's input as the JSON body; the answer carries
`request_id`, `response_url`, `status_url` and `cancel_url`, "so you don't have to build these
endpoints yourself". `GET .../requests/{request_id}/status` answers `status` `IN_QUEUE` (with
`queue_position`), `IN_PROGRESS` or `COMPLETED`; fal's own client reads `error` and
`error_type` on a COMPLETED status that failed. `GET .../requests/{request_id}` (the
response_url) answers the model's output; errors come as `{"detail": ...}` (fal's client reads
`detail`). `PUT .../requests/{request_id}/cancel` "Cancels a request that has not started
processing" (answers `CANCELLATION_REQUESTED`, or `ALREADY_COMPLETED`). "The subpath ... should
be used when making the request, but not when getting request status or results": status URLs
use the model's owner/app only. Webhooks (docs.fal.ai/model-endpoints/webhooks): "pass an extra
fal_webhook query parameter"; fal then POSTs `{"request_id", "status": "OK"|"ERROR", "payload",
"error"}`. Verifying them (same page): headers `X-Fal-Webhook-Request-Id`, `-User-Id`,
`-Timestamp` (epoch seconds) and `-Signature` (hex ED25519); the signed message is the request
id, user id, timestamp and the SHA-256 hex digest of the raw body joined by newlines; the public
keys are the JWKS at https://rest.alpha.fal.ai/.well-known/jwks.json (cache up to 24 h), and the
timestamp must be within 5 minutes. File inputs (docs.fal.ai/documentation/model-apis/fal-cdn):
"Models on fal accept file inputs as URLs ... Some models also accept data URIs
(data:image/png;base64,...)" — no size limit is documented; fal's model pages cap image inputs
at 10 MB where they state one. No idempotency key is documented, so none is sent (a job is
submitted once per attempt by the caller). The model pages (fal.ai/models/<id>/llms.txt) give
each shipped template's inputs, durations and shapes (TEMPLATES below).

The connection test: fal documents no account endpoint on the queue host, so `test()` asks for
the status of a request id that cannot exist, on the connection's own model. fal refuses a bad
key with 401/403 before it looks the request up; a good key gets a 404 (or 400/422 for a
malformed id). Only 401/403, 5xx and unreachable hosts fail the test; a wrong model name is not
detected here (fal answers it 404 too) and fails the first job with fal's message instead.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from generator.upstream.base import Capabilities, Connection, Polled, Submitted, UpstreamError, connection_template
from generator.upstream.http import call, own_url
from generator.upstream.templates import (
    CUSTOM_DURATIONS,
    ModelTemplate,
    job_values,
    render_template,
    shapes_of,
)

DEFAULT_BASE_URL = "https://queue.fal.run"
JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
# A connection with its own base_url (tests, a gateway) takes its keys from there.
JWKS_PATH = "/.well-known/jwks.json"
JWKS_CACHE_S = 24 * 3600
JWKS_REFRESH_AFTER_S = 60  # a signature no cached key verifies refetches keys at most this often
WEBHOOK_LEEWAY_S = 300
# fal documents no limit; 5 MB of image is under the 10 MB its model pages cap image inputs at,
# with room for base64's third.
DATA_URI_MAX_BYTES = 5 * 1024 * 1024
# A request id no queue can hold (the test's status lookup).
PROBE_REQUEST_ID = "00000000-0000-4000-8000-000000000000"
# fal's client treats these first segments as a namespace before owner/app.
APP_NAMESPACES = ("workflows", "comfy")
# A request id from fal's answer goes into request paths: letters, digits, '_' and '-' only.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# owner/app[/subpath...]: path segments of letters, digits, '.', '_', '-' (no '..', no query).
_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)+$")

# Shipped models (fal.ai/models/<id>/llms.txt). Kling and Hailuo take `duration` as an enum of
# strings, hence {duration:text}; none of these image-to-video endpoints takes an aspect ratio
# (the video keeps the photo's shape), so they offer the photo's shape only.
_KLING_INPUTS = {
    "prompt": "{prompt}",
    "image_url": "{image_url}",
    "duration": "{duration:text}",
    "negative_prompt": "{negative_prompt}",
    "cfg_scale": "{guidance_scale}",
}
TEMPLATES: dict[str, ModelTemplate] = {
    "fal-ai/kling-video/v2.1/standard/image-to-video": ModelTemplate(
        title="Kling 2.1 Standard", inputs=_KLING_INPUTS, durations=(5, 10)
    ),
    "fal-ai/kling-video/v2.5-turbo/standard/image-to-video": ModelTemplate(
        title="Kling 2.5 Turbo Standard", inputs=_KLING_INPUTS, durations=(5, 10)
    ),
    # Its length is frames: 81 at 16 fps (the model's defaults) = 5.06 s, 161 (its most) = 10.06 s.
    "fal-ai/wan/v2.2-a14b/image-to-video": ModelTemplate(
        title="Wan 2.2 A14B",
        inputs={"prompt": "{prompt}", "image_url": "{image_url}", "frames_per_second": 16},
        durations=(5, 10),
        by_duration={5: {"num_frames": 81}, 10: {"num_frames": 161}},
    ),
    # Hailuo 02 makes 6 s or 10 s: a 5 s job cannot be asked honestly, so 10 s only.
    "fal-ai/minimax/hailuo-02/standard/image-to-video": ModelTemplate(
        title="MiniMax Hailuo 02 Standard (768p)",
        inputs={
            "prompt": "{prompt}",
            "image_url": "{image_url}",
            "duration": "{duration:text}",
            "prompt_optimizer": True,
        },
        durations=(10,),
    ),
}

_jwks_lock = threading.Lock()
_jwks_cache: dict[str, tuple[float, list[Ed25519PublicKey]]] = {}


def _base(connection: Connection) -> str:
    return (connection.base_url or DEFAULT_BASE_URL).rstrip("/")


def _auth(connection: Connection) -> dict[str, str]:
    return {"Authorization": f"Key {connection.api_key}"}


def _model(connection: Connection) -> str:
    model = connection.model.strip("/")
    if not _MODEL_ID.match(model) or ".." in model:
        raise UpstreamError(f"{connection.model!r} is not a fal model id (owner/app[/path], e.g. fal-ai/wan-i2v)")
    return model


def _requests_url(connection: Connection, request_id: str) -> str:
    """Where a request's status, result and cancel live: the model's [namespace/]owner/app, without its subpath."""
    segments = _model(connection).split("/")
    app = "/".join(segments[: 3 if segments[0] in APP_NAMESPACES else 2])
    return f"{_base(connection)}/{app}/requests/{request_id}"


def _request_urls(connection: Connection, request_id: str) -> dict[str, str]:
    own = _requests_url(connection, request_id)
    return {"status_url": f"{own}/status", "response_url": own, "cancel_url": f"{own}/cancel"}


def _video_url(output: Any) -> str:
    """The video's URL in a model's output: `video.url` (every shipped model), else the first of `videos`."""
    if not isinstance(output, dict):
        return ""
    video = output.get("video")
    if isinstance(video, dict) and isinstance(video.get("url"), str):
        return video["url"]
    videos = output.get("videos")
    if isinstance(videos, list) and videos and isinstance(videos[0], dict) and isinstance(videos[0].get("url"), str):
        return videos[0]["url"]
    return ""


class FalProvider:
    templates = TEMPLATES

    def capabilities(self, connection: Connection) -> Capabilities:
        try:
            template = connection_template(connection, TEMPLATES)
        except UpstreamError:  # saved before it had a template: the submit says why
            return Capabilities(durations=CUSTOM_DURATIONS, aspect_ratios=("source",), webhooks=True)
        return Capabilities(
            durations=template.durations,
            aspect_ratios=shapes_of(template),
            data_uri_max_bytes=DATA_URI_MAX_BYTES,
            webhooks=True,
        )

    def test(self, connection: Connection) -> None:
        try:
            call("GET", f"{_requests_url(connection, PROBE_REQUEST_ID)}/status", headers=_auth(connection))
        except UpstreamError as exc:
            if exc.status in {401, 403} or exc.status is None or exc.status >= 500 or exc.status == 429:
                raise
            # 404 (no such request) or 400/422 (an id it would not take): the key was accepted.

    def submit(
        self, connection: Connection, *, image_url: str, options: dict, idempotency_key: str = "", webhook_url: str = ""
    ) -> Submitted:
        body = render_template(
            connection_template(connection, TEMPLATES), job_values(image_url=image_url, options=options)
        )
        url = f"{_base(connection)}/{_model(connection)}"
        if webhook_url:
            url += "?" + urlencode({"fal_webhook": webhook_url})
        answer = call("POST", url, headers=_auth(connection), body=body)
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise UpstreamError("the upstream's answer has no request_id", transient=True)
        if not REQUEST_ID_RE.fullmatch(request_id):  # it goes into request paths (fal's are UUIDs)
            raise UpstreamError(f"the upstream answered a request id this server does not take: {request_id[:100]!r}")
        derived = _request_urls(connection, request_id)
        state = {key: own_url(answer.get(key), _base(connection), default) for key, default in derived.items()}
        return Submitted(upstream_id=request_id, state=state)

    def _state_url(self, connection: Connection, submitted: Submitted, key: str) -> str:
        """A request's address as fal named it, when on the connection's own origin; else the derived one."""
        derived = _request_urls(connection, submitted.upstream_id)[key]
        return own_url(submitted.state.get(key), _base(connection), derived)

    def poll(self, connection: Connection, submitted: Submitted) -> Polled:
        answer = call("GET", self._state_url(connection, submitted, "status_url"), headers=_auth(connection))
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == "IN_QUEUE":
            position = answer.get("queue_position")
            detail: dict[str, Any] = {"state": status, "started": False}
            if isinstance(position, int) and not isinstance(position, bool):
                detail["queue_position"] = position
            return Polled(status="running", detail=detail)
        if status == "IN_PROGRESS":
            return Polled(status="running", detail={"state": status, "started": True})
        if status != "COMPLETED":
            return Polled(status="failed", error=f"the upstream answered an unknown status {status!r}")
        if answer.get("error"):
            kind = answer.get("error_type")
            return Polled(status="failed", error=str(answer["error"]) + (f" ({kind})" if kind else ""))
        output = call("GET", self._state_url(connection, submitted, "response_url"), headers=_auth(connection))
        url = _video_url(output)
        if not url:
            return Polled(status="failed", error="the upstream finished without a video link")
        return Polled(status="done", result_url=url)

    def cancel(self, connection: Connection, submitted: Submitted) -> None:
        call("PUT", self._state_url(connection, submitted, "cancel_url"), headers=_auth(connection))

    def verify_webhook(self, connection: Connection, *, headers: Mapping[str, str], body: bytes) -> bool:
        lowered = {name.lower(): value for name, value in headers.items()}
        parts = [lowered.get(f"x-fal-webhook-{name}", "") for name in ("request-id", "user-id", "timestamp")]
        signature_hex = lowered.get("x-fal-webhook-signature", "")
        if not all(parts) or not signature_hex:
            return False
        try:
            stamp = int(parts[2])
            signature = bytes.fromhex(signature_hex)
        except ValueError:
            return False
        if abs(time.time() - stamp) > WEBHOOK_LEEWAY_S:
            return False
        message = "\n".join([*parts, hashlib.sha256(body).hexdigest()]).encode()
        jwks_url = f"{connection.base_url.rstrip('/')}{JWKS_PATH}" if connection.base_url else JWKS_URL
        for fresh in (False, True):
            keys = _public_keys(jwks_url, fresh=fresh)
            for key in keys:
                try:
                    key.verify(signature, message)
                    return True
                except InvalidSignature:
                    continue
        return False


def _public_keys(url: str, *, fresh: bool) -> list[Ed25519PublicKey]:
    """fal's ED25519 webhook keys from a JWKS, cached JWKS_CACHE_S; `fresh` refetches if the copy is a minute old."""
    now = time.monotonic()
    with _jwks_lock:
        cached = _jwks_cache.get(url)
    if cached is not None:
        age = now - cached[0]
        if age < (JWKS_REFRESH_AFTER_S if fresh else JWKS_CACHE_S):
            return [] if fresh else cached[1]
    try:
        answer = call("GET", url, headers={})
    except UpstreamError:
        return [] if fresh or cached is None else cached[1]
    keys = []
    for jwk in answer.get("keys", []) if isinstance(answer, dict) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        try:
            raw = base64.urlsafe_b64decode(str(jwk.get("x", "")) + "=" * (-len(str(jwk.get("x", ""))) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError:
            continue
    with _jwks_lock:
        _jwks_cache[url] = (now, keys)
    return keys
