"""Handing the photo to an upstream: presigned URL, data: URI, signed /i/ link, or a 422 that says why.

The upstream is a loopback fake behind a stub provider (tests/upstream_stub.py): on submit it
really fetches the http(s) URL it was given (moto's S3 server, this server's /i/ link) or
decodes the data: URI, and keeps what it got, so each test compares real bytes.
"""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from django.core import signing
from django.core.files.storage import default_storage

from generator.contract.generate import GenerateRequest
from generator.crypto import encrypt_json
from generator.errors import ValidationFailed
from generator.models import CreditLedger, Generation, Storage
from generator.services.generation_files import kept_input_name
from generator.services.generations import generation_cancel, generation_create
from generator.services.upstream_handover import input_link_token
from generator.services.upstream_jobs import upstream_cancel, upstream_poll
from generator.services.worker import generation_run
from generator.upstream.base import Capabilities
from tests.factories import make_team
from tests.loopback import LoopbackServer, Route, Seen
from tests.test_upstream_claid import mp4_bytes
from tests.test_worker import png_bytes
from tests.upstream_stub import StubProvider, register_stub, stub_connection

PHOTO = png_bytes((400, 300))
URL_ONLY = Capabilities(durations=(5, 10), data_uri_max_bytes=0)
INLINE = Capabilities(durations=(5, 10), data_uri_max_bytes=10 * 1024 * 1024)


class FakeUpstream:
    """On submit, fetch (or decode) the image it was handed, as a real upstream would, and keep what came."""

    def __init__(self, server: LoopbackServer) -> None:
        self.got: list[dict] = []
        server.routes["/submit"] = self.submit
        server.routes["/photo.png"] = Route(body=PHOTO, headers={"Content-Type": "image/png"})
        server.routes["/result.mp4"] = Route(body=mp4_bytes(), headers={"Content-Type": "video/mp4"})

    def submit(self, seen: Seen) -> Route:
        image_url = json.loads(seen.body)["image_url"]
        if image_url.startswith("data:"):
            header, _, payload = image_url.partition(",")
            self.got.append({"url": image_url, "type": header, "body": base64.b64decode(payload)})
        else:
            try:
                answer = httpx.get(image_url, timeout=10)
            except httpx.ConnectError:  # the test-client tests have no server at GENERATOR_PUBLIC_URL
                self.got.append({"url": image_url, "status": None})
                return Route(body=b'{"id": "up-1"}')
            self.got.append(
                {
                    "url": image_url,
                    "status": answer.status_code,
                    "type": answer.headers.get("content-type"),
                    "body": answer.content,
                }
            )
        return Route(body=b'{"id": "up-1"}')


@pytest.fixture
def upstream(loopback) -> FakeUpstream:
    return FakeUpstream(loopback)


def _local_photo(team, name: str = "a.png", data: bytes = PHOTO) -> str:
    """Put a photo in the team's local storage "mine" and return its storage:// URI."""
    from django.conf import settings

    Storage.objects.get_or_create(team=team, name="mine", defaults={"type": "local", "parameters": {"path": ""}})
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return f"storage://mine/{name}"


def _create(team, source: str) -> Generation:
    request = GenerateRequest.parse({"input": source, "options": {"prompt": "steam rising", "engine": "stub"}})
    return generation_create(team=team, request=request).generation


def _run(generation: Generation) -> Generation:
    generation_run(generation.pk)
    generation.refresh_from_db()
    return generation


def _ledger(generation) -> list[tuple[str, int]]:
    return list(CreditLedger.objects.filter(generation=generation).order_by("pk").values_list("kind", "amount"))


def _public(settings, url: str = "http://127.0.0.1:8123") -> None:
    """Make this server's public URL one the upstream can reach (a vouched-for loopback port, as in development)."""
    settings.GENERATOR_PUBLIC_URL = url
    host_port = url.split("//", 1)[1]
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [*settings.GENERATOR_FETCH_ALLOW_HOSTS, host_port]


def test_an_http_input_is_handed_over_as_its_original_url(team, unlimited, loopback, upstream, monkeypatch):
    register_stub(monkeypatch, caps=INLINE)
    stub_connection(team, loopback.url(""))
    generation = _run(_create(team, loopback.url("/photo.png")))
    assert generation.stage == "waiting", generation.errors
    assert upstream.got[0]["url"] == loopback.url("/photo.png")
    assert upstream.got[0]["body"] == PHOTO
    assert not default_storage.exists(kept_input_name(generation))


def test_an_s3_input_is_handed_over_as_a_presigned_url_the_upstream_really_fetches(
    team, unlimited, loopback, upstream, monkeypatch, settings, s3_server, s3_bucket
):
    register_stub(monkeypatch, caps=INLINE)  # a data: URI would do too; the presigned URL comes first
    stub_connection(team, loopback.url(""))
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [*settings.GENERATOR_FETCH_ALLOW_HOSTS, s3_server.host_port]
    s3_server.client().put_object(Bucket=s3_bucket, Key="shop/in/cat.png", Body=PHOTO)
    Storage.objects.create(
        team=team,
        name="bucket",
        type="s3",
        parameters={"bucket": s3_bucket, "path": "shop", "region": "us-east-1", "endpoint_url": s3_server.endpoint_url},
        secrets_encrypted=encrypt_json({"access_key": s3_server.access_key, "secret_access_key": s3_server.secret_key}),
    )
    with s3_server.presigned_requests_allowed():
        generation = _run(_create(team, "storage://bucket/in/cat.png"))
    assert generation.stage == "waiting", generation.errors
    handed = upstream.got[0]
    assert handed["url"].startswith(f"{s3_server.endpoint_url}/{s3_bucket}/shop/in/cat.png?")
    assert "X-Amz-Expires=3600" in handed["url"]
    assert (handed["status"], handed["body"]) == (200, PHOTO)
    assert s3_server.secret_key not in handed["url"]
    # Nothing was kept here: the bucket serves the photo itself.
    assert not default_storage.exists(kept_input_name(generation))


def test_a_storage_input_is_handed_over_as_a_data_uri_that_decodes_to_the_validated_bytes(
    team, unlimited, loopback, upstream, monkeypatch
):
    register_stub(monkeypatch, caps=INLINE)
    stub_connection(team, loopback.url(""))
    generation = _run(_create(team, _local_photo(team)))
    assert generation.stage == "waiting", generation.errors
    assert upstream.got[0]["type"] == "data:image/png;base64"
    assert upstream.got[0]["body"] == PHOTO


def test_a_storage_input_is_handed_over_as_a_signed_link_to_this_server(
    team, unlimited, loopback, upstream, monkeypatch, settings, client
):
    register_stub(monkeypatch, caps=URL_ONLY)
    stub_connection(team, loopback.url(""))
    _public(settings)
    generation = _run(_create(team, _local_photo(team)))
    assert generation.stage == "waiting", generation.errors
    url = StubProvider.submits[0]["image_url"]
    assert url.startswith("http://127.0.0.1:8123/i/")
    path = url.removeprefix("http://127.0.0.1:8123")
    # No login: the test client has no session.
    served = client.get(path)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["Cache-Control"] == "private, no-store"
    assert b"".join(served.streaming_content) == PHOTO


def test_the_signed_link_serves_only_its_own_job_and_not_after_an_hour_or_the_end_of_the_job(
    team, unlimited, loopback, upstream, monkeypatch, settings, client
):
    register_stub(monkeypatch, caps=URL_ONLY)
    stub_connection(team, loopback.url(""))
    _public(settings)
    first = _run(_create(team, _local_photo(team, "a.png", PHOTO)))
    other_photo = png_bytes((500, 400))
    other_team = make_team("Other", credits=1000, slug="other")
    other_team.rate_per_second = other_team.rate_per_minute = 1000
    other_team.save()
    stub_connection(other_team, loopback.url(""))
    second = _run(_create(other_team, _local_photo(other_team, "b.png", other_photo)))
    assert (first.stage, second.stage) == ("waiting", "waiting"), (first.errors, second.errors)
    first_path = "/i/" + input_link_token(first)
    second_path = "/i/" + input_link_token(second)
    assert b"".join(client.get(first_path).streaming_content) == PHOTO
    assert b"".join(client.get(second_path).streaming_content) == other_photo
    # A token is bound to its job: changing the uuid it names breaks the signature.
    token = input_link_token(first)
    swapped = token.replace(str(first.uuid), str(second.uuid))
    assert swapped != token
    for bad in (swapped, "nonsense", token[:-2] + "xx", signing.TimestampSigner(salt="x").sign(str(first.uuid))):
        assert client.get(f"/i/{bad}").status_code == 404
    # An hour on, the link is dead.
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() + 3601)
    assert client.get(first_path).status_code == 404
    monkeypatch.setattr(signing.time, "time", real_time)
    # Once the job ends (here: cancelled, and the cancel forwarded), the kept photo is gone and so is the link.
    generation_cancel(team=team, generation=first)
    upstream_cancel(first.pk)
    assert client.get(first_path).status_code == 404
    assert not default_storage.exists(kept_input_name(first))
    assert client.get(second_path).status_code == 200


def test_the_kept_photo_is_removed_when_the_job_is_done(team, unlimited, loopback, upstream, monkeypatch, settings):
    register_stub(monkeypatch, caps=INLINE)
    stub_connection(team, loopback.url(""))
    generation = _run(_create(team, _local_photo(team)))
    assert default_storage.exists(kept_input_name(generation))
    monkeypatch.setattr(StubProvider, "result_url", loopback.url("/result.mp4"))
    upstream_poll([generation.pk])
    generation.refresh_from_db()
    assert generation.status == "DONE", generation.errors
    assert not default_storage.exists(kept_input_name(generation))


def test_a_local_input_with_no_data_uris_and_no_public_url_is_a_422_that_says_why(
    team, unlimited, loopback, monkeypatch
):
    register_stub(monkeypatch, caps=URL_ONLY)
    stub_connection(team, loopback.url(""))
    with pytest.raises(ValidationFailed) as caught:
        _create(team, _local_photo(team))
    reason = caught.value.details["input"][0]
    assert "no presigned URL" in reason
    assert "no data: URI" in reason
    assert "GENERATOR_PUBLIC_URL (http://testserver) is not reachable" in reason
    assert Generation.objects.count() == 0
    assert CreditLedger.objects.filter(kind="hold").count() == 0


def test_a_bucket_on_a_private_endpoint_is_no_presigned_hand_over(team, unlimited, loopback, monkeypatch):
    register_stub(monkeypatch, caps=URL_ONLY)
    stub_connection(team, loopback.url(""))
    Storage.objects.create(
        team=team,
        name="minio",
        type="s3",
        parameters={"bucket": "b", "path": "", "endpoint_url": "http://10.0.0.5:9000"},
        secrets_encrypted=encrypt_json({"access_key": "AKIAEXAMPLE", "secret_access_key": "example-secret"}),
    )
    with pytest.raises(ValidationFailed) as caught:
        _create(team, "storage://minio/a.png")
    assert "'minio' (s3) gives no presigned URL" in caught.value.details["input"][0]


def test_a_photo_larger_than_the_data_uri_limit_with_no_public_url_ends_error_with_a_refund(
    team, unlimited, loopback, upstream, monkeypatch
):
    register_stub(monkeypatch, caps=Capabilities(durations=(5, 10), data_uri_max_bytes=1000))
    stub_connection(team, loopback.url(""))
    generation = _run(_create(team, _local_photo(team)))
    assert generation.status == "ERROR"
    reason = generation.errors[0]["error"]
    assert f"the photo ({len(PHOTO)} bytes) cannot be handed to the upstream" in reason
    assert "at most 1000 bytes" in reason
    assert _ledger(generation) == [("hold", -40), ("refund", 40)]
    assert StubProvider.submits == []
    assert upstream.got == []
    assert not default_storage.exists(kept_input_name(generation))


@pytest.mark.django_db(transaction=True)
def test_an_upstream_really_fetches_the_signed_link_from_a_running_server(live_server, loopback, monkeypatch, settings):
    team = make_team("Live", credits=1000, slug="live")
    team.rate_per_second = team.rate_per_minute = 1000
    team.save()
    upstream = FakeUpstream(loopback)
    register_stub(monkeypatch, caps=URL_ONLY)
    stub_connection(team, loopback.url(""))
    _public(settings, live_server.url)
    generation = _run(_create(team, _local_photo(team)))
    assert generation.stage == "waiting", generation.errors
    assert upstream.got[0]["url"].startswith(f"{live_server.url}/i/")
    assert (upstream.got[0]["status"], upstream.got[0]["type"], upstream.got[0]["body"]) == (200, "image/png", PHOTO)


def test_the_hourly_purge_removes_kept_photos_of_ended_jobs_and_keeps_running_ones(
    team, unlimited, loopback, upstream, monkeypatch
):
    from django.core.files.base import ContentFile

    from generator.services.upstream_handover import kept_inputs_purge

    register_stub(monkeypatch, caps=INLINE)
    stub_connection(team, loopback.url(""))
    running = _run(_create(team, _local_photo(team, "a.png")))
    ended = _run(_create(team, _local_photo(team, "b.png")))
    # Cancelled, but its forwarded cancel (which removes the photo) was lost by the broker.
    generation_cancel(team=team, generation=ended)
    assert default_storage.exists(kept_input_name(ended))
    default_storage.save("inputs/not-a-uuid.txt", ContentFile(b"someone else's"))
    assert kept_inputs_purge() == 1
    assert not default_storage.exists(kept_input_name(ended))
    assert default_storage.exists(kept_input_name(running))
    assert default_storage.exists("inputs/not-a-uuid.txt")
