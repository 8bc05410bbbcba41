"""JSON calls to an upstream API through the safe client, with its errors mapped to UpstreamError."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from generator.fetch import FetchError, SafeClient
from generator.upstream.base import UpstreamError

ANSWER_MAX_BYTES = 1024 * 1024
CALL_DEADLINE_S = 20.0


def _message(status: int, body: Any, text: str) -> str:
    if isinstance(body, dict):
        # Claid's envelope ({"error_message": ...}), Replicate's ({"detail": ...}), fal's ({"detail": ...}).
        for key in ("error_message", "detail", "error", "message", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if value:
                return json.dumps(value)[:500]
    return (text or f"HTTP {status}")[:500]


# Replicate says when in its 429 body, not in a header: "Expected available in 4 seconds.",
# "Your rate limit resets in ~30s."
_WAIT_IN_TEXT = re.compile(r"\bin ~?(\d+(?:\.\d+)?) ?(?:s\b|sec|second)")


def _retry_after(response: httpx.Response, message: str) -> float:
    for name in ("retry-after", "ratelimit-reset"):
        value = response.headers.get(name, "")
        try:
            return max(1.0, float(value))
        except ValueError:
            continue
    said = _WAIT_IN_TEXT.search(message)
    return max(1.0, float(said.group(1))) if said else 1.0


def own_url(url: Any, base: str, fallback: str) -> str:
    """`url` when it is on the API's own origin (`base`'s scheme, host and port), else `fallback`.

    Upstreams name addresses in their answers (status, result, cancel); the key is sent with
    every call, so it only ever goes to the connection's own API, never where an answer points.
    """
    if not isinstance(url, str) or not url:
        return fallback
    try:
        named, own = httpx.URL(url), httpx.URL(base)
    except httpx.InvalidURL:
        return fallback
    return url if (named.scheme, named.host, named.port) == (own.scheme, own.host, own.port) else fallback


def call(method: str, url: str, *, headers: dict[str, str], body: dict | None = None) -> Any:
    """Send one JSON request and return the decoded answer; raise UpstreamError per the answer's status."""
    content = json.dumps(body).encode() if body is not None else None
    all_headers = {"Accept": "application/json", **headers}
    if content is not None:
        all_headers["Content-Type"] = "application/json"
    try:
        with SafeClient(deadline_s=CALL_DEADLINE_S) as client:
            response = client.open(method, url, content=content, headers=all_headers)
            try:
                raw = b""
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > ANSWER_MAX_BYTES:
                        raise UpstreamError("the upstream's answer is too large", transient=True)
            except httpx.HTTPError as exc:
                raise UpstreamError(str(client.describe(exc, httpx.URL(url).host)), transient=True) from None
            finally:
                response.close()
    except FetchError as exc:
        raise UpstreamError(str(exc), transient=True) from None
    text = raw.decode("utf-8", "replace")
    try:
        decoded = json.loads(text) if text else {}
    except ValueError:
        decoded = None
    status = response.status_code
    if status == 429:
        retry_after = _retry_after(response, _message(status, decoded, text))
        raise UpstreamError("the upstream is rate limiting", status=429, retry_after=retry_after)
    if status >= 500:
        raise UpstreamError(f"the upstream answered {status}", status=status, transient=True)
    if status >= 400:
        raise UpstreamError(_message(status, decoded, text), status=status)
    if decoded is None:
        raise UpstreamError("the upstream's answer is not JSON", status=status, transient=True)
    return decoded
