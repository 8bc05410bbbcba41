"""Webhooks against a real loopback receiver: signature, retries with back-off, the delivery log."""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import socket
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone
from django_q.models import Schedule

from generator.errors import ValidationFailed
from generator.models import Generation, Team, WebhookDelivery
from generator.services import queue, webhooks
from generator.services.webhooks import (
    webhook_configure,
    webhook_deliver,
    webhook_deliver_later,
)
from generator.webhook_tasks import webhook_deliver_task
from tests.factories import make_team
from tests.loopback import LoopbackServer, Route, Seen

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(loopback):
    """The team's webhook endpoint: a loopback server the fetcher may post to."""
    return loopback


def _answers(*statuses: int):
    """A responder that answers the given statuses in turn, then keeps the last one."""
    remaining = list(statuses)

    def respond(seen: Seen) -> Route:
        status = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return Route(status=status, body=b"ok")

    return respond


def _finished_generation(team, *, status=Generation.Status.DONE) -> Generation:
    now = timezone.now()
    return Generation.objects.create(
        team=team,
        request={"input": "https://example.com/a.jpg", "options": {"prompt": {"text": "slow zoom"}, "duration": 5}},
        status=status,
        stage=Generation.Stage.DONE if status == Generation.Status.DONE else Generation.Stage.ERROR,
        progress=100,
        cost=5,
        errors=[]
        if status == Generation.Status.DONE
        else [{"error": "could not resolve host x", "created_at": now.isoformat()}],
        started_at=now - timedelta(seconds=20),
        completed_at=now,
    )


def _without_links(payload: dict) -> dict:
    output = payload["data"].get("result", {}).get("output_object", {})
    output.pop("tmp_url", None)
    return payload


def _retry_schedule(generation: Generation, attempt: int) -> Schedule | None:
    return Schedule.objects.filter(name=f"webhook:{generation.id}:{attempt}").first()


def _team_with_hook(receiver: LoopbackServer, path: str = "/hook"):
    team = make_team()
    secret = webhook_configure(team=team, url=receiver.url(path))
    team.refresh_from_db()
    return team, secret


def test_delivery_posts_the_api_body_signed_so_the_receiver_can_verify_it(receiver):
    receiver.routes["/hook"] = Route(status=204)
    team, secret = _team_with_hook(receiver)
    generation = _finished_generation(team)

    webhook_deliver_task(generation.id, 1)

    [seen] = receiver.requests
    assert seen.method == "POST"
    assert seen.headers["Content-Type"] == "application/json"
    expected = hmac.new(secret.encode(), seen.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(seen.headers["X-Claid-Hmac-SHA256"], expected)
    payload = json.loads(seen.body)
    assert payload["data"]["id"] == generation.id
    assert payload["data"]["status"] == "DONE"
    # The same object the GET endpoint answers; only the freshly signed link differs per call.
    assert _without_links(payload) == _without_links(json.loads(webhooks.webhook_body(generation)))
    [delivery] = WebhookDelivery.objects.filter(generation=generation)
    assert (delivery.attempt, delivery.status_code, delivery.error) == (1, 204, "")
    assert delivery.url == receiver.url("/hook")
    assert _retry_schedule(generation, 2) is None


def test_signature_does_not_verify_with_another_secret(receiver):
    receiver.routes["/hook"] = Route(status=200)
    team, _secret = _team_with_hook(receiver)
    webhook_deliver_task(_finished_generation(team).id, 1)

    [seen] = receiver.requests
    forged = hmac.new(b"not-the-secret", seen.body, hashlib.sha256).hexdigest()
    assert seen.headers["X-Claid-Hmac-SHA256"] != forged


def test_error_generations_are_delivered_with_their_reason(receiver):
    receiver.routes["/hook"] = Route(status=200)
    team, _ = _team_with_hook(receiver)
    generation = _finished_generation(team, status=Generation.Status.ERROR)

    webhook_deliver_task(generation.id, 1)

    payload = json.loads(receiver.requests[0].body)
    assert payload["data"]["status"] == "ERROR"
    assert payload["data"]["errors"][0]["error"] == "could not resolve host x"


def test_a_500_is_logged_and_retried_with_back_off_then_succeeds(receiver):
    receiver.routes["/hook"] = _answers(500, 200)
    team, _ = _team_with_hook(receiver)
    generation = _finished_generation(team)
    before = timezone.now()

    webhook_deliver_task(generation.id, 1)

    first = WebhookDelivery.objects.get(generation=generation, attempt=1)
    assert (first.status_code, first.error) == (500, "server answered 500")
    retry = _retry_schedule(generation, 2)
    assert retry.func == "generator.webhook_tasks.webhook_deliver_task"
    assert retry.schedule_type == Schedule.ONCE
    assert retry.next_run >= before + timedelta(seconds=webhooks.WEBHOOK_BACKOFF_S[0])

    # Run what the scheduler would run.
    webhook_deliver_task(*ast.literal_eval(retry.args))

    second = WebhookDelivery.objects.get(generation=generation, attempt=2)
    assert (second.status_code, second.error) == (200, "")
    assert _retry_schedule(generation, 3) is None
    # The retry carries the same body; only the signed link is minted again when it is sent.
    bodies = [json.loads(seen.body) for seen in receiver.requests]
    assert len(bodies) == 2
    links = [body["data"]["result"]["output_object"].pop("tmp_url") for body in bodies]
    assert all(link.startswith("http://testserver/v/") for link in links)
    assert bodies[0] == bodies[1]


def test_back_off_grows_between_attempts(receiver):
    receiver.routes["/hook"] = Route(status=503)
    team, _ = _team_with_hook(receiver)
    generation = _finished_generation(team)

    delays = []
    for attempt in range(1, 5):
        started = timezone.now()
        webhook_deliver_task(generation.id, attempt)
        delays.append((_retry_schedule(generation, attempt + 1).next_run - started).total_seconds())

    assert delays == sorted(delays)
    assert delays[0] >= 30
    assert delays[-1] >= 1800


def test_gives_up_after_five_attempts(receiver):
    receiver.routes["/hook"] = Route(status=500)
    team, _ = _team_with_hook(receiver)
    generation = _finished_generation(team)

    for attempt in range(1, 6):
        webhook_deliver_task(generation.id, attempt)

    assert list(
        WebhookDelivery.objects.filter(generation=generation).order_by("attempt").values_list("attempt", flat=True)
    ) == [1, 2, 3, 4, 5]
    assert _retry_schedule(generation, 6) is None
    assert len(receiver.requests) == 5


def test_a_repeated_task_does_not_post_twice(receiver):
    receiver.routes["/hook"] = _answers(500, 200)
    team, _ = _team_with_hook(receiver)
    generation = _finished_generation(team)

    webhook_deliver_task(generation.id, 1)
    webhook_deliver_task(generation.id, 1)

    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.filter(generation=generation).count() == 1
    assert Schedule.objects.filter(name__startswith=f"webhook:{generation.id}:").count() == 1


def test_nothing_is_posted_after_a_success(receiver):
    receiver.routes["/hook"] = Route(status=200)
    team, _ = _team_with_hook(receiver)
    generation = _finished_generation(team)

    webhook_deliver_task(generation.id, 1)
    assert webhook_deliver(generation_id=generation.id, attempt=2) is None
    assert len(receiver.requests) == 1


def test_unfinished_generation_is_not_delivered(receiver):
    receiver.routes["/hook"] = Route(status=200)
    team, _ = _team_with_hook(receiver)
    generation = _finished_generation(team)
    Generation.objects.filter(pk=generation.pk).update(status=Generation.Status.PROCESSING)

    assert webhook_deliver(generation_id=generation.id) is None
    assert receiver.requests == []


def test_unreachable_receiver_is_logged_with_a_readable_error(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{port}"]
    team = make_team()
    webhook_configure(team=team, url=f"http://127.0.0.1:{port}/hook")
    generation = _finished_generation(team)

    delivery = webhook_deliver(generation_id=generation.id)

    assert (delivery.status_code, delivery.error) == (None, "could not connect to 127.0.0.1")
    assert _retry_schedule(generation, 2) is not None


def test_webhook_to_a_loopback_name_is_refused_at_delivery(settings, receiver):
    settings.GENERATOR_FETCH_PORTS = [80, 443, receiver.port]
    receiver.routes["/hook"] = Route(status=200)
    team = make_team()
    webhook_configure(team=team, url=receiver.url("/hook", host="localhost"))
    generation = _finished_generation(team)

    delivery = webhook_deliver(generation_id=generation.id)

    assert delivery.error == "host localhost resolves to a private, loopback or reserved address"
    assert receiver.requests == []


# The last four are IPv6 forms Python 3.11 calls global (IPv4-compatible, site-local, SRv6, Teredo).
@pytest.mark.parametrize(
    "address", ["10.0.0.7", "::a00:7", "fec0::7", "5f00::7", "2001:0:4136:e378:8000:63bf:3fff:fdd2"]
)
def test_webhook_to_a_private_address_is_refused_without_connecting(monkeypatch, address):
    dials = []
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [(family, socket.SOCK_STREAM, 6, "", (address, port))],
    )
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: dials.append(address))
    team = make_team()
    webhook_configure(team=team, url="https://hooks.internal.test/receive")
    generation = _finished_generation(team)

    delivery = webhook_deliver(generation_id=generation.id)

    assert delivery.error == "host hooks.internal.test resolves to a private, loopback or reserved address"
    assert dials == []


def test_deliver_later_enqueues_the_first_attempt_only_after_commit(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(queue, "async_task", lambda func, *args, **kwargs: sent.append((func, args)))
    team = make_team()
    webhook_configure(team=team, url="https://hooks.example.com/x")
    generation = _finished_generation(team)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        webhook_deliver_later(generation.id)
    assert sent == []
    for callback in callbacks:
        callback()

    assert sent == [("generator.webhook_tasks.webhook_deliver_task", (generation.id, 1))]


def test_deliver_later_does_nothing_without_a_webhook(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(queue, "async_task", lambda func, *args, **kwargs: sent.append((func, args)))
    generation = _finished_generation(make_team())

    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliver_later(generation.id)

    assert sent == []


def test_configure_generates_a_secret_and_keeps_it_when_the_url_changes():
    team = make_team()
    secret = webhook_configure(team=team, url="https://hooks.example.com/a")
    assert len(secret) == 64
    assert webhook_configure(team=team, url="https://hooks.example.com/b") == secret
    team.refresh_from_db()
    assert (team.webhook_url, webhooks.webhook_secret(team)) == ("https://hooks.example.com/b", secret)


def test_configure_accepts_a_given_secret_and_clears_with_an_empty_url():
    team = make_team()
    assert (
        webhook_configure(team=team, url="https://hooks.example.com/a", secret="s3cr3t-s3cr3t-s3cr3t")
        == "s3cr3t-s3cr3t-s3cr3t"
    )
    assert webhook_configure(team=team, url="") == ""
    team.refresh_from_db()
    assert (team.webhook_url, team.webhook_secret_encrypted) == ("", "")


def test_webhook_secret_is_encrypted_at_rest_with_the_storage_secrets_key(settings):
    settings.GENERATOR_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    team = make_team()
    secret = webhook_configure(team=team, url="https://hooks.example.com/a", secret="s3cr3t-s3cr3t-s3cr3t")

    stored = Team.objects.filter(pk=team.pk).values()[0]
    assert not any(secret in str(value) for value in stored.values())
    assert Fernet(settings.GENERATOR_ENCRYPTION_KEYS[0].encode()).decrypt(stored["webhook_secret_encrypted"].encode())
    assert webhooks.webhook_secret(Team.objects.get(pk=team.pk)) == secret


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/", "only http and https"),
        ("https://user:pw@hooks.example.com/", "user information"),
        ("http://127.0.0.1/hook", "private, loopback or reserved"),
        ("http://[::1]/hook", "private, loopback or reserved"),
        ("http://169.254.169.254/latest", "private, loopback or reserved"),
        ("http://[::a9fe:a9fe]/latest", "private, loopback or reserved"),
        ("http://[fec0::1]/hook", "private, loopback or reserved"),
        ("http://[5f00::1]/hook", "private, loopback or reserved"),
        ("https://hooks.example.com:8443/", "port 8443 is not allowed"),
        ("https://hooks.example.com/" + "a" * 600, "at most 512 characters"),
    ],
)
def test_configure_refuses_urls_the_policy_refuses(url, message):
    team = make_team()
    with pytest.raises(ValidationFailed) as caught:
        webhook_configure(team=team, url=url)
    assert message in caught.value.details["webhook_url"][0]
    team.refresh_from_db()
    assert team.webhook_url == ""


def test_configure_refuses_a_weak_secret():
    team = make_team()
    with pytest.raises(ValidationFailed) as caught:
        webhook_configure(team=team, url="https://hooks.example.com/", secret="short")
    assert "webhook_secret" in caught.value.details


def test_a_job_that_ends_in_error_posts_its_reason_to_the_webhook(
    receiver, monkeypatch, django_capture_on_commit_callbacks
):
    from generator.contract.generate import GenerateRequest
    from generator.services.generations import generation_create
    from generator.services.worker import generation_run

    # Run queued work inline, as a worker would, so the whole chain is exercised.
    def run_inline(func_path, *args, **kwargs):
        if func_path == webhooks.WEBHOOK_TASK:
            webhook_deliver_task(*args)

    monkeypatch.setattr(queue, "async_task", run_inline)
    receiver.routes["/hook"] = Route(status=200)
    team, secret = _team_with_hook(receiver)
    request = GenerateRequest(
        input=receiver.url("/gone.jpg"), options={"prompt": {"text": "slow zoom in"}, "duration": 5}
    )
    generation = generation_create(team=team, request=request).generation

    with django_capture_on_commit_callbacks(execute=True):
        generation_run(generation.pk)

    hooks = [seen for seen in receiver.requests if seen.path == "/hook"]
    assert len(hooks) == 1
    body = hooks[0].body
    assert hooks[0].headers["X-Claid-Hmac-SHA256"] == hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    data = json.loads(body)["data"]
    assert (data["id"], data["status"]) == (generation.id, "ERROR")
    assert data["errors"][0]["error"] == "server answered 404"
    assert WebhookDelivery.objects.get(generation=generation).status_code == 200
