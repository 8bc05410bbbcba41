"""Replicate's predictions API for a named model (`owner/name`), with the input templates shipped for it.

Relied on (Replicate's HTTP API documentation, read in the search store; the replicate-python
client was read for how it calls the same endpoints, none of its code is used):
- Create: `POST {base}/v1/models/{owner}/{name}/predictions` (official models; base
  https://api.replicate.com) with `Authorization: Bearer <token>` and
  `{"input": {...}, "webhook": "https://...", "webhook_events_filter": ["completed"]}`; the answer
  is the prediction: `id`, `status` "starting", `urls.get` and `urls.cancel`.
- Get: `GET /v1/predictions/{id}`. `status` is `starting` ("a new worker is being started"),
  `processing` (the model's predict() is running), `succeeded`, `failed` or `canceled`; `output`
  is the model's output with files as HTTPS URLs (for these models one URL, for some a list),
  `error` the failure, `logs` the model's log text, `started_at`, `metrics.predict_time`. Input
  and output files are deleted after an hour (the result is downloaded at once and kept here).
- Cancel: `POST /v1/predictions/{id}/cancel`. Account: `GET /v1/account` answers the token's
  `{"type", "username", "name"}`: the cheap authenticated call that tests a key.
- Errors come as `{"detail": "..."}`; a 429 as `{"detail": "Request was throttled. Expected
  available in 1 second."}`. Limits: predictions are created at 600 requests a minute, with short
  bursts above it allowed (no per-second limit is documented); other endpoints 3000 a minute.
- Input files: a URL, or a data URI "only recommended if the file is less than 1MB".
- Webhooks: `webhook` is "an HTTPS URL for us to call when the results are ready" (an http
  address is not sent: the job is polled to its end); the body is the prediction object, the same as a GET; `completed` is sent when the
  prediction ends (succeeded/canceled/failed) and retried on a 4xx/5xx. Every webhook is signed:
  headers `webhook-id`, `webhook-timestamp` (seconds), `webhook-signature` (space-delimited
  `v1,<base64>`), an HMAC-SHA256 over `{id}.{timestamp}.{body}` with the account's key from
  `GET /v1/webhooks/default/secret` (`{"key": "whsec_..."}`) — the Standard Webhooks scheme, so
  it is checked with that scheme's reference verifier (`standardwebhooks`, 5 minutes tolerance).
- Not used: `Prefer: wait` (sync mode: the create request is held open until the output is
  ready, up to 60 s) — a worker here never waits on an upstream. No idempotency key is
  documented, so none is sent; a job is still submitted at most once per attempt.

The model docs for the shipped templates (replicate.com's own pages where the store has them)
are cited at each template below.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from generator.upstream.base import Capabilities, Connection, Polled, Submitted, UpstreamError, connection_template
from generator.upstream.http import call, own_url
from generator.upstream.templates import (
    CUSTOM_DURATIONS,
    ModelTemplate,
    job_values,
    render_inputs,
    shapes_of,
    template_for,
)

DEFAULT_BASE_URL = "https://api.replicate.com"
# 600 prediction creates a minute, short bursts above it allowed: no per-second window of its own.
RATE = (600, 600)
# "only recommended if the file is less than 1MB" (Input files).
DATA_URI_MAX_BYTES = 1_000_000
# Prediction ids go into request paths: only the letters and digits Replicate's ids are made of.
PREDICTION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# tqdm's bar as video models log it ("45%|████▌     | 9/20 [00:10<00:12, ...]"); the last one counts.
_PERCENT = re.compile(r"(?<!\d)(\d{1,3})%\|")
LOG_TAIL_CHARS = 4000
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv")

# --- the shipped input templates (Replicate's input names per model) ----------------------------

TEMPLATES: dict[str, ModelTemplate] = {
    # api.core.today's listing of Replicate's kwaivgi/kling-v2.1 (replicate.com's own page is not in
    # the store; its kling-v2.0 page has the same names): start_image (required), prompt
    # (required), negative_prompt, duration 5 or 10, mode standard (720p) or pro (1080p), both 24 fps.
    # The output takes the start image's shape.
    "kwaivgi/kling-v2.1": ModelTemplate(
        title="Kling 2.1 (standard, 720p)",
        inputs={
            "start_image": "{image_url}",
            "prompt": "{prompt}",
            "negative_prompt": "{negative_prompt}",
            "duration": "{duration}",
            "mode": "standard",
        },
        durations=(5, 10),
    ),
    # replicate.com/minimax/hailuo-02 (API page): first_frame_image ("the output video will have
    # the same aspect ratio as this image"), prompt, duration 6 or 10 ("10 seconds is only
    # available for 768p"), resolution 512p/768p/1080p. This service makes 5 or 10 s, so 10 s at 768p.
    "minimax/hailuo-02": ModelTemplate(
        title="Hailuo 02 (768p, 10 s)",
        inputs={
            "first_frame_image": "{image_url}",
            "prompt": "{prompt}",
            "duration": "{duration}",
            "resolution": "768p",
        },
        durations=(10,),
    ),
    # api.core.today's listing of Replicate's wan-video/wan-2.5-i2v: image (required), prompt
    # (required), negative_prompt, duration up to 10 s (default 5), resolution 480p/720p/1080p.
    "wan-video/wan-2.5-i2v": ModelTemplate(
        title="Wan 2.5 image-to-video (720p)",
        inputs={
            "image": "{image_url}",
            "prompt": "{prompt}",
            "negative_prompt": "{negative_prompt}",
            "duration": "{duration}",
            "resolution": "720p",
        },
        durations=(5, 10),
    ),
    # Replicate's page for wan-video/wan-2.2-i2v-fast is not in the store; Segmind's mirror of the
    # same model documents its inputs: image, prompt, num_frames 81, frames_per_second 16,
    # resolution 480p/720p, go_fast. Its length is set in frames, not seconds: 81 frames at 16 fps
    # is 5.06 s, so it makes 5 s only.
    "wan-video/wan-2.2-i2v-fast": ModelTemplate(
        title="Wan 2.2 image-to-video fast (480p, 5 s)",
        inputs={
            "image": "{image_url}",
            "prompt": "{prompt}",
            "num_frames": 81,
            "frames_per_second": 16,
            "resolution": "480p",
            "go_fast": True,
        },
        durations=(5,),
    ),
}


def _base(connection: Connection) -> str:
    return (connection.base_url or DEFAULT_BASE_URL).rstrip("/")


def _auth(connection: Connection) -> dict[str, str]:
    return {"Authorization": f"Bearer {connection.api_key}"}


def _model_path(connection: Connection) -> str:
    if not MODEL_RE.fullmatch(connection.model or ""):
        raise UpstreamError(f"the model must be a Replicate model name 'owner/name', not {connection.model!r}")
    return connection.model


def _result_url(output: Any) -> str:
    """The video in a prediction's output: one URL, or the first video (else first URL) of a list."""
    if isinstance(output, str):
        return output
    urls = [item for item in output if isinstance(item, str)] if isinstance(output, list) else []
    videos = [url for url in urls if url.split("?", 1)[0].lower().endswith(VIDEO_SUFFIXES)]
    return (videos or urls or [""])[0]


def _percent(logs: Any) -> int | None:
    if not isinstance(logs, str):
        return None
    found = _PERCENT.findall(logs[-LOG_TAIL_CHARS:])
    value = int(found[-1]) if found else -1
    return value if 0 <= value <= 100 else None


def polled_of(prediction: Any) -> Polled:
    """One look at a prediction object (a GET's answer or a webhook's body)."""
    if not isinstance(prediction, dict):
        raise UpstreamError("the upstream's answer has no prediction", transient=True)
    status = str(prediction.get("status") or "")
    if status == "succeeded":
        url = _result_url(prediction.get("output"))
        if not url:
            return Polled(status="failed", error="the prediction succeeded without a video link")
        return Polled(status="done", result_url=url)
    if status == "failed":
        error = prediction.get("error")
        return Polled(status="failed", error=str(error) if error else "the prediction failed")
    if status == "canceled":
        return Polled(status="failed", error="the prediction was canceled upstream")
    detail: dict[str, Any] = {"state": status, "started": status == "processing"}
    percent = _percent(prediction.get("logs"))
    if percent is not None:
        detail["percent"] = percent
    return Polled(status="running", detail=detail)


# --- the webhook signing key: fetched with the connection's key and kept in this process ----------

SECRET_TTL_S = 3600.0
SECRET_RETRY_S = 60.0
_secrets: dict[str, tuple[float, str]] = {}
_secrets_lock = threading.Lock()


def _secret_slot(connection: Connection) -> str:
    return hashlib.sha256(f"{_base(connection)}\0{connection.api_key}".encode()).hexdigest()


def signing_secret(connection: Connection) -> str:
    """The account's webhook signing key ("" when it cannot be had now), fetched at most once an hour.

    Why fetched and cached rather than stored with the credentials: the key belongs to the
    Replicate account, not to the connection, and Replicate may rotate it; a copy saved at
    connection time would go stale silently, one cached for an hour re-syncs by itself. It costs
    one authenticated GET a connection an hour in each web process, is held only in memory (never
    in the database or the shared cache), and a failed fetch is remembered for a minute, so a
    flood of forged webhooks cannot turn into a flood of calls to Replicate. A webhook only makes
    the next poll sooner: without the key the job is still polled to its end.
    """
    slot, now = _secret_slot(connection), time.monotonic()
    with _secrets_lock:
        held = _secrets.get(slot)
        if held is not None and held[0] > now:
            return held[1]
    try:
        answer = call("GET", f"{_base(connection)}/v1/webhooks/default/secret", headers=_auth(connection))
        key = answer.get("key") if isinstance(answer, dict) else None
        secret = key if isinstance(key, str) else ""
    except UpstreamError:
        secret = ""
    with _secrets_lock:
        _secrets[slot] = (now + (SECRET_TTL_S if secret else SECRET_RETRY_S), secret)
    return secret


class ReplicateProvider:
    templates = TEMPLATES

    def capabilities(self, connection: Connection) -> Capabilities:
        try:
            template = template_for(model=connection.model, inputs=connection.inputs, shipped=TEMPLATES)
            durations, shapes = template.durations, shapes_of(template)
        except KeyError:
            durations, shapes = CUSTOM_DURATIONS, ("source",)
        return Capabilities(
            durations=durations,
            aspect_ratios=shapes,
            rate=RATE,
            data_uri_max_bytes=DATA_URI_MAX_BYTES,
            webhooks=True,
        )

    def test(self, connection: Connection) -> None:
        _model_path(connection)
        call("GET", f"{_base(connection)}/v1/account", headers=_auth(connection))

    def submit(
        self, connection: Connection, *, image_url: str, options: dict, idempotency_key: str = "", webhook_url: str = ""
    ) -> Submitted:
        model = _model_path(connection)
        template = connection_template(connection, TEMPLATES)
        body: dict[str, Any] = {
            "input": render_inputs(template.inputs, job_values(image_url=image_url, options=options))
        }
        if webhook_url.startswith("https://"):  # "an HTTPS URL for us to call"; otherwise polled only
            body["webhook"] = webhook_url
            body["webhook_events_filter"] = ["completed"]
        answer = call(
            "POST", f"{_base(connection)}/v1/models/{model}/predictions", headers=_auth(connection), body=body
        )
        if not isinstance(answer, dict) or not answer.get("id"):
            raise UpstreamError("the upstream's answer has no prediction id", transient=True)
        prediction_id = str(answer["id"])
        if not PREDICTION_ID_RE.fullmatch(prediction_id):
            raise UpstreamError(
                f"the upstream answered a prediction id this server does not take: {prediction_id[:100]!r}"
            )
        urls = answer.get("urls")
        urls = urls if isinstance(urls, dict) else {}
        own = f"{_base(connection)}/v1/predictions/{prediction_id}"
        return Submitted(
            upstream_id=prediction_id,
            state={
                "get_url": own_url(urls.get("get"), _base(connection), own),
                "cancel_url": own_url(urls.get("cancel"), _base(connection), f"{own}/cancel"),
            },
        )

    def poll(self, connection: Connection, submitted: Submitted) -> Polled:
        own = f"{_base(connection)}/v1/predictions/{submitted.upstream_id}"
        url = own_url(submitted.state.get("get_url"), _base(connection), own)
        return polled_of(call("GET", url, headers=_auth(connection)))

    def cancel(self, connection: Connection, submitted: Submitted) -> None:
        own = f"{_base(connection)}/v1/predictions/{submitted.upstream_id}/cancel"
        call("POST", own_url(submitted.state.get("cancel_url"), _base(connection), own), headers=_auth(connection))

    def verify_webhook(self, connection: Connection, *, headers: Mapping[str, str], body: bytes) -> bool:
        secret = signing_secret(connection)
        if not secret:
            return False
        try:
            Webhook(secret).verify(body, dict(headers.items()), json_parse=False)
        except (WebhookVerificationError, EmptyWebhookSecretError, ValueError, TypeError):
            return False
        return True
