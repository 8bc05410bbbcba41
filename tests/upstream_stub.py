"""A provider registered only in tests, for what every upstream shares (webhooks, image hand-over).

It speaks a tiny made-up protocol to a loopback fake (tests.loopback): `POST {base}/submit`
with `{"image_url", "webhook_url"}` answers `{"id"}`. Its webhooks are signed with an HMAC of
the body under the connection's key, in `X-Stub-Signature`. What the provider can do is set
per test in `StubProvider.caps`; every submit's arguments are kept in `StubProvider.submits`;
its looks say "running" until a test sets `StubProvider.result_url`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import ClassVar

from generator.crypto import encrypt_json
from generator.models import EngineConnection
from generator.upstream.base import Capabilities, Connection, Polled, Submitted
from generator.upstream.http import call

STUB_KEY = "stub-secret-key-456"
# Registered in place of this type's provider; the connection row must use a type the model allows.
STUB_TYPE = "fal"


def stub_signature(body: bytes, key: str = STUB_KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class StubProvider:
    caps: ClassVar[Capabilities] = Capabilities(durations=(5, 10))
    submits: ClassVar[list[dict]] = []
    # Where the finished video is, once set: the next look says the job is done.
    result_url: ClassVar[str] = ""

    def capabilities(self, connection: Connection) -> Capabilities:
        return StubProvider.caps

    def test(self, connection: Connection) -> None:
        return None

    def submit(
        self, connection: Connection, *, image_url: str, options: dict, idempotency_key: str = "", webhook_url: str = ""
    ) -> Submitted:
        StubProvider.submits.append({"image_url": image_url, "webhook_url": webhook_url, "options": options})
        answer = call(
            "POST",
            f"{connection.base_url}/submit",
            headers={"Authorization": f"Key {connection.api_key}"},
            body={"image_url": image_url, "webhook_url": webhook_url},
        )
        return Submitted(upstream_id=str(answer["id"]))

    def poll(self, connection: Connection, submitted: Submitted) -> Polled:
        if StubProvider.result_url:
            return Polled(status="done", result_url=StubProvider.result_url)
        return Polled(status="running", detail={"state": "IN_QUEUE"})

    def cancel(self, connection: Connection, submitted: Submitted) -> None:
        return None

    def verify_webhook(self, connection: Connection, *, headers: Mapping[str, str], body: bytes) -> bool:
        return hmac.compare_digest(headers.get("X-Stub-Signature", ""), stub_signature(body, connection.api_key))


def register_stub(monkeypatch, *, caps: Capabilities) -> None:
    """Put StubProvider in the registry for STUB_TYPE, with these capabilities and no submits seen."""
    from generator.upstream import registry

    monkeypatch.setitem(registry._PROVIDERS, STUB_TYPE, "tests.upstream_stub.StubProvider")
    monkeypatch.setattr(StubProvider, "caps", caps)
    monkeypatch.setattr(StubProvider, "submits", [])
    monkeypatch.setattr(StubProvider, "result_url", "")


def stub_connection(team, base_url: str) -> EngineConnection:
    return EngineConnection.objects.create(
        team=team,
        name="stub",
        type=STUB_TYPE,
        parameters={"model": "stub/model", "base_url": base_url.rstrip("/")},
        secrets_encrypted=encrypt_json({"api_key": STUB_KEY}),
        price_5s=40,
    )
