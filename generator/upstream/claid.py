"""Claid.ai's Image-to-Video API, which this server's own /v1/ API also speaks (docs/api.md).

Relied on (Claid's contract, the same as docs/api.md): `POST {base}/v1/video/generate` with
`Authorization: Bearer <key>` and the body `{"input": <image URL>, "options": {...}}` answers
`{"data": {"id", "status": "PROCESSING", "result_url"}}`; `GET result_url` answers the job with
`status` PROCESSING, DONE or ERROR, `errors[].error` and, once DONE,
`result.output_object.tmp_url`; `POST {base}/v1/video/generate/{id}/cancel` cancels a queued
job; errors come in the envelope `{"error_code", "error_type", "error_message"}`, 402 when the
account is out of credits and 429 with RateLimit-*/Retry-After headers. `GET {base}/v1/account`
is the cheap authenticated call that tests a key. The input is a URL "from 1 to 512
characters" that "must be accessible by our system" (Image to Video I/O): no data: URIs.
"""

from __future__ import annotations

from collections.abc import Mapping

from generator.upstream.base import Capabilities, Connection, Polled, Submitted, UpstreamError
from generator.upstream.http import call

DEFAULT_BASE_URL = "https://api.claid.ai"
# Claid's default limits for an account: 1 request a second and 15 a minute.
RATE = (1, 15)
# Claid's image-to-video accepts these; the built-in options travel as they are.
OPTION_KEYS = ("prompt", "negative_prompt", "duration", "guidance_scale")


def _base(connection: Connection) -> str:
    return (connection.base_url or DEFAULT_BASE_URL).rstrip("/")


def _auth(connection: Connection) -> dict[str, str]:
    return {"Authorization": f"Bearer {connection.api_key}"}


class ClaidProvider:
    templates = None  # one fixed request: no input template

    def capabilities(self, connection: Connection) -> Capabilities:
        # Claid's video API has no shape option: a fixed aspect ratio cannot be honoured.
        return Capabilities(durations=(5, 10), aspect_ratios=("source",), rate=RATE, auto_prompt=True)

    def test(self, connection: Connection) -> None:
        call("GET", f"{_base(connection)}/v1/account", headers=_auth(connection))

    def submit(
        self, connection: Connection, *, image_url: str, options: dict, idempotency_key: str = "", webhook_url: str = ""
    ) -> Submitted:
        body = {"input": image_url, "options": {k: options[k] for k in OPTION_KEYS if k in options}}
        headers = {**_auth(connection), **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
        answer = call("POST", f"{_base(connection)}/v1/video/generate", headers=headers, body=body)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or "id" not in data:
            raise UpstreamError("the upstream's answer has no job id", transient=True)
        result_url = data.get("result_url") or f"{_base(connection)}/v1/video/generate/{data['id']}"
        return Submitted(upstream_id=str(data["id"]), state={"result_url": result_url})

    def poll(self, connection: Connection, submitted: Submitted) -> Polled:
        answer = call("GET", submitted.state["result_url"], headers=_auth(connection))
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            raise UpstreamError("the upstream's answer has no job", transient=True)
        status = data.get("status")
        if status == "DONE":
            output = (data.get("result") or {}).get("output_object") or {}
            url = output.get("tmp_url")
            if not url:
                return Polled(status="failed", error="the upstream finished without a video link")
            return Polled(status="done", result_url=url)
        if status in {"ERROR", "CANCELLED"}:
            errors = data.get("errors") or []
            reason = "; ".join(str(e.get("error", "")) for e in errors if isinstance(e, dict)) or status.lower()
            return Polled(status="failed", error=reason)
        return Polled(status="running", detail={"state": str(status or "")})

    def verify_webhook(self, connection: Connection, *, headers: Mapping[str, str], body: bytes) -> bool:
        return False  # Claid's video API has no webhooks: jobs are polled.

    def cancel(self, connection: Connection, submitted: Submitted) -> None:
        call(
            "POST",
            f"{_base(connection)}/v1/video/generate/{submitted.upstream_id}/cancel",
            headers=_auth(connection),
            body={},
        )
