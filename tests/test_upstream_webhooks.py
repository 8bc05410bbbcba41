"""Upstream webhooks: POST /hooks/upstream/<token>/ only books an immediate look, and only when its signature is good."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from generator.contract.generate import GenerateRequest
from generator.models import Generation
from generator.services.generations import generation_create
from generator.services.upstream_webhooks import WEBHOOK_MAX_BYTES, WEBHOOK_SALT, upstream_webhook_url
from generator.services.worker import generation_run
from generator.upstream.base import Capabilities
from tests.loopback import Route
from tests.test_worker import png_bytes
from tests.upstream_stub import StubProvider, register_stub, stub_connection, stub_signature

SIGNED_CAPS = Capabilities(durations=(5, 10), webhooks=True)


@pytest.fixture
def stub(monkeypatch, loopback, team):
    register_stub(monkeypatch, caps=SIGNED_CAPS)
    loopback.routes["/submit"] = Route(body=b'{"id": "up-1"}')
    loopback.routes["/photo.png"] = Route(body=png_bytes((400, 300)), headers={"Content-Type": "image/png"})
    return stub_connection(team, loopback.url(""))


@pytest.fixture
def public(settings, loopback):
    """This server's public URL is one the upstream can reach (a loopback port vouched for, as in development)."""
    settings.GENERATOR_PUBLIC_URL = "http://127.0.0.1:8123"
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [*settings.GENERATOR_FETCH_ALLOW_HOSTS, "127.0.0.1:8123"]


def _waiting(team, loopback) -> Generation:
    request = GenerateRequest.parse(
        {"input": loopback.url("/photo.png"), "options": {"prompt": "steam rising", "engine": "stub"}}
    )
    generation = generation_create(team=team, request=request).generation
    generation_run(generation.pk)
    generation.refresh_from_db()
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting"), generation.errors
    return generation


def _hook_path(generation: Generation) -> str:
    url = StubProvider.submits[-1]["webhook_url"]
    assert url.startswith("http://127.0.0.1:8123/hooks/upstream/")
    return url.removeprefix("http://127.0.0.1:8123")


def _post(client, path: str, body: bytes, signature: str | None):
    headers = {"HTTP_X_STUB_SIGNATURE": signature} if signature is not None else {}
    return client.post(path, data=body, content_type="application/json", **headers)


BODY = json.dumps({"request_id": "up-1", "status": "OK"}).encode()


def test_a_signed_webhook_books_a_look_now_and_hands_the_job_to_a_poll_task(
    client, team, unlimited, stub, public, loopback, sent, django_capture_on_commit_callbacks
):
    generation = _waiting(team, loopback)
    sent_to_upstream = json.loads(next(s for s in loopback.requests if s.path == "/submit").body)
    assert sent_to_upstream["webhook_url"] == StubProvider.submits[-1]["webhook_url"]
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now() + timedelta(seconds=16))
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, _hook_path(generation), BODY, stub_signature(BODY))
    assert response.status_code == 202
    assert sent == [("generator.tasks.upstream_poll_task", (str(generation.pk),))]
    generation.refresh_from_db()
    # Claimed as the ticker claims: the poll task looks now, the ticker leaves it alone meanwhile.
    assert generation.next_poll_at >= before + timedelta(seconds=100)
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting")
    # The same webhook again while the poll task has the job: nothing more is handed out.
    with django_capture_on_commit_callbacks(execute=True):
        again = _post(client, _hook_path(generation), BODY, stub_signature(BODY))
    assert again.status_code == 200
    assert len(sent) == 1


@pytest.mark.parametrize(
    "signature", [None, "", "0" * 64, stub_signature(BODY, "another-key"), stub_signature(b"other body")]
)
def test_a_webhook_with_a_bad_or_absent_signature_is_a_401_and_books_nothing(
    client, team, unlimited, stub, public, loopback, sent, signature, django_capture_on_commit_callbacks
):
    generation = _waiting(team, loopback)
    booked = generation.next_poll_at
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, _hook_path(generation), BODY, signature)
    assert response.status_code == 401
    assert sent == []
    generation.refresh_from_db()
    assert generation.next_poll_at == booked
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting")


def test_a_webhook_for_a_job_no_longer_waiting_is_answered_2xx_and_changes_nothing(
    client, team, unlimited, stub, public, loopback, sent, django_capture_on_commit_callbacks
):
    from generator.services.generations import generation_cancel

    generation = _waiting(team, loopback)
    path = _hook_path(generation)
    generation = generation_cancel(team=team, generation=generation)
    before = Generation.objects.values().get(pk=generation.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, path, BODY, stub_signature(BODY))
    assert response.status_code == 200
    assert response.json() == {"looking": False}
    assert [task for task in sent if task[0].endswith("upstream_poll_task")] == []
    assert Generation.objects.values().get(pk=generation.pk) == before


def test_unknown_forged_expired_or_other_attempt_tokens_change_nothing(
    client, team, unlimited, stub, public, loopback, sent, settings, django_capture_on_commit_callbacks
):
    generation = _waiting(team, loopback)
    path = _hook_path(generation)
    token = path.removeprefix("/hooks/upstream/").rstrip("/")
    forged = signing.TimestampSigner(salt="another-salt").sign(f"{generation.uuid}:{generation.attempts}")
    other_attempt = signing.TimestampSigner(salt=WEBHOOK_SALT).sign(f"{generation.uuid}:{generation.attempts + 1}")
    booked = generation.next_poll_at
    with django_capture_on_commit_callbacks(execute=True):
        for bad in ("nonsense", token[:-2] + "xx", forged):
            assert _post(client, f"/hooks/upstream/{bad}/", BODY, stub_signature(BODY)).status_code == 404
        assert _post(client, f"/hooks/upstream/{other_attempt}/", BODY, stub_signature(BODY)).status_code == 200
        settings.GENERATOR_UPSTREAM_DEADLINE_S = -3600  # every token is now past its age
        assert _post(client, path, BODY, stub_signature(BODY)).status_code == 404
    assert sent == []
    generation.refresh_from_db()
    assert generation.next_poll_at == booked


def test_an_oversized_body_or_a_get_is_refused_without_a_500(
    client, team, unlimited, stub, public, loopback, sent, django_capture_on_commit_callbacks
):
    generation = _waiting(team, loopback)
    path = _hook_path(generation)
    big = b"x" * (WEBHOOK_MAX_BYTES + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, path, big, stub_signature(big)).status_code == 413
        assert client.get(path).status_code == 405
    assert sent == []


def test_the_webhook_route_needs_no_login_and_no_csrf_token(team, unlimited, stub, public, loopback, sent):
    from django.test import Client

    generation = _waiting(team, loopback)
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        _hook_path(generation), data=BODY, content_type="application/json", HTTP_X_STUB_SIGNATURE=stub_signature(BODY)
    )
    assert response.status_code == 202


def test_a_webhook_url_is_given_only_when_the_provider_signs_webhooks_and_this_server_is_public(
    team, unlimited, stub, loopback, settings, monkeypatch
):
    # tests run with GENERATOR_PUBLIC_URL = http://testserver: a single-label name is not public.
    _waiting(team, loopback)
    assert StubProvider.submits[-1]["webhook_url"] == ""
    for private in ("http://127.0.0.1:8000", "http://localhost:8000", "http://10.0.0.5", "https://video.internal"):
        settings.GENERATOR_PUBLIC_URL = private
        _waiting(team, loopback)
        assert StubProvider.submits[-1]["webhook_url"] == "", private
    settings.GENERATOR_PUBLIC_URL = "https://video.acme.example.com"
    generation = _waiting(team, loopback)
    assert StubProvider.submits[-1]["webhook_url"] == "https://video.acme.example.com" + reverse(
        "upstream-webhook", kwargs={"token": StubProvider.submits[-1]["webhook_url"].split("/")[-2]}
    )
    assert upstream_webhook_url(generation).startswith("https://video.acme.example.com/hooks/upstream/")
    # A provider without signed webhooks never gets one, public or not.
    monkeypatch.setattr(StubProvider, "caps", Capabilities(durations=(5, 10), webhooks=False))
    _waiting(team, loopback)
    assert StubProvider.submits[-1]["webhook_url"] == ""
