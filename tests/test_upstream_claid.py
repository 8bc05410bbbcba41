"""Jobs on a Claid connection, end to end against a loopback Claid stand-in: submit once, polls, download, remux.

The stand-in follows Claid's documented shapes (generator/upstream/claid.py); its video is a
real H.264 (or MPEG-4) file made here with PyAV, so the download, probe and remux are real.
"""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from fractions import Fraction

import av
import numpy as np
import pytest
from django.utils import timezone

from generator.contract.generate import GenerateRequest
from generator.crypto import encrypt_json
from generator.models import EngineConnection, Generation
from generator.presenters import generation_to_api
from generator.services.generations import generation_create
from generator.services.upstream_jobs import upstream_polls_due
from tests.loopback import Route, Seen
from tests.test_worker import png_bytes
from tests.upstream_support import ledger, look, submit_job

SECRET = "claid-secret-key-123"


def mp4_bytes(*, seconds: float = 5.0, codec: str = "libx264", fmt: str = "mp4") -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 10)
        for index in range(int(seconds * 10)):
            pixels = np.full((48, 64, 3), index * 4 % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


class FakeClaid:
    """Claid's video API on loopback: the job is PROCESSING for `running_looks` looks, then `outcome`."""

    def __init__(self, server) -> None:
        self.server = server
        self.running_looks = 1
        self.looks = 0
        self.outcome: dict = {"status": "DONE"}
        self.submit_route: Route | None = None
        self.poll_route: Route | None = None
        self.video = Route(body=mp4_bytes(), headers={"Content-Type": "video/mp4"})
        server.routes["/v1/account"] = Route(body=b'{"data": {}}')
        server.routes["/v1/video/generate"] = self.submit
        server.routes["/v1/video/generate/7"] = self.poll
        server.routes["/v1/video/generate/7/cancel"] = Route(body=b'{"data": {}}')
        server.routes["/tmp/7.mp4"] = lambda seen: self.video
        server.routes["/photo.png"] = Route(body=png_bytes((400, 300)), headers={"Content-Type": "image/png"})

    def submit(self, seen: Seen) -> Route:
        if self.submit_route is not None:
            return self.submit_route
        body = {"data": {"id": 7, "status": "PROCESSING", "result_url": self.server.url("/v1/video/generate/7")}}
        return Route(body=json.dumps(body).encode())

    def poll(self, seen: Seen) -> Route:
        if self.poll_route is not None:
            return self.poll_route
        self.looks += 1
        data: dict = {"id": 7, "status": "PROCESSING", "errors": [], "result": {}}
        if self.looks > self.running_looks:
            data.update(self.outcome)
            if data["status"] == "DONE":
                data["result"] = {"output_object": {"tmp_url": self.server.url("/tmp/7.mp4")}}
        return Route(body=json.dumps({"data": data}).encode())

    def submits(self) -> int:
        return sum(1 for seen in self.server.requests if seen.method == "POST" and seen.path == "/v1/video/generate")


@pytest.fixture
def claid(loopback, team):
    fake = FakeClaid(loopback)
    EngineConnection.objects.create(
        team=team,
        name="claid",
        type="claid",
        parameters={"base_url": loopback.url("").rstrip("/")},
        secrets_encrypted=encrypt_json({"api_key": SECRET}),
        price_5s=50,
    )
    return fake


def _submit(team, claid) -> Generation:
    body = {"input": claid.server.url("/photo.png"), "options": {"prompt": "steam rising", "engine": "claid"}}
    return submit_job(team, body)


def test_a_claid_job_is_submitted_once_waits_without_a_worker_and_is_stored_like_a_builtin_video(
    team, unlimited, claid, settings
):
    generation = _submit(team, claid)
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting")
    assert generation.engine_info == {"name": "claid", "type": "claid", "upstream_id": "7"}
    assert generation.lease_expires_at is None
    assert generation.next_poll_at <= timezone.now() + timedelta(seconds=5)
    sent = next(seen for seen in claid.server.requests if seen.path == "/v1/video/generate")
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert sent.headers["Idempotency-Key"] == str(generation.uuid)
    assert json.loads(sent.body)["input"] == claid.server.url("/photo.png")
    # The ticker's finder claims the due look (a second tick finds nothing more to hand out).
    assert upstream_polls_due(now=timezone.now() + timedelta(seconds=5)) == 1
    assert upstream_polls_due(now=timezone.now() + timedelta(seconds=5)) == 0
    generation = look(generation)
    assert generation.stage == "waiting"
    generation = look(generation)
    assert (generation.status, generation.stage) == ("DONE", "done"), generation.errors
    assert claid.submits() == 1
    with av.open(str(settings.MEDIA_ROOT / generation.video_name)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert round(float(container.duration / av.time_base)) == 5
    assert (settings.MEDIA_ROOT / generation.poster_name).exists()
    assert ledger(generation) == [("hold", -50)]
    data = generation_to_api(generation)
    assert data["engine"] == {"name": "claid", "type": "claid", "upstream_id": "7"}
    assert "/tmp/7.mp4" not in json.dumps(data)


def test_claid_gets_an_automatic_prompt_as_sent_and_writes_it_itself(team, unlimited, claid):
    auto = {"generate": True, "guidelines": "calm"}
    body = {"input": claid.server.url("/photo.png"), "options": {"prompt": auto, "engine": "claid"}}
    generation = submit_job(team, body)
    assert generation.stage == "waiting", generation.errors
    sent = next(seen for seen in claid.server.requests if seen.path == "/v1/video/generate")
    assert json.loads(sent.body)["options"]["prompt"] == auto
    assert generation.generated_prompt == ""  # Claid writes it; this server writes none for it


def test_an_upstream_error_ends_error_with_its_message_and_one_refund(team, unlimited, claid):
    claid.outcome = {"status": "ERROR", "errors": [{"error": "image is smaller than 300 px", "created_at": "x"}]}
    generation = look(_submit(team, claid), 2)
    assert generation.status == "ERROR"
    assert "image is smaller than 300 px" in generation.errors[0]["error"]
    assert ledger(generation) == [("hold", -50), ("refund", 50)]


def test_an_upstream_4xx_at_submit_is_an_error_with_the_upstream_message_and_a_refund(team, unlimited, claid):
    body = {"error_code": 3000, "error_type": "billing", "error_message": "not enough credits on the Claid account"}
    claid.submit_route = Route(status=402, body=json.dumps(body).encode())
    generation = _submit(team, claid)
    assert generation.status == "ERROR"
    assert "not enough credits on the Claid account" in generation.errors[0]["error"]
    assert ledger(generation) == [("hold", -50), ("refund", 50)]


def test_a_429_while_polling_waits_retry_after_and_keeps_the_job(team, unlimited, claid):
    generation = _submit(team, claid)
    claid.poll_route = Route(status=429, body=b"{}", headers={"Retry-After": "7"})
    before = timezone.now()
    generation = look(generation)
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting")
    assert generation.next_poll_at >= before + timedelta(seconds=6)
    claid.poll_route = None
    generation = look(generation, 2)
    assert generation.status == "DONE"
    assert claid.submits() == 1


def test_a_result_that_is_not_a_video_is_an_error_with_a_refund_and_nothing_kept(team, unlimited, claid, settings):
    claid.video = Route(body=b"<html>not a video</html>", headers={"Content-Type": "text/html"})
    generation = look(_submit(team, claid), 2)
    assert generation.status == "ERROR"
    assert "not a video" in generation.errors[0]["error"]
    assert ledger(generation) == [("hold", -50), ("refund", 50)]
    assert generation.video_name == ""
    assert not list(settings.MEDIA_ROOT.rglob("*.mp4"))


def test_a_result_that_is_not_h264_is_transcoded(team, unlimited, claid, settings):
    claid.video = Route(body=mp4_bytes(codec="mpeg4"), headers={"Content-Type": "video/mp4"})
    generation = look(_submit(team, claid), 2)
    assert generation.status == "DONE", generation.errors
    with av.open(str(settings.MEDIA_ROOT / generation.video_name)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_a_result_of_the_wrong_length_or_too_large_is_refused(team, unlimited, claid, settings):
    claid.video = Route(body=mp4_bytes(seconds=2), headers={"Content-Type": "video/mp4"})
    generation = look(_submit(team, claid), 2)
    assert generation.status == "ERROR"
    assert "not the 5 s asked" in generation.errors[0]["error"]
    settings.GENERATOR_RESULT_MAX_BYTES = 100
    claid.video = Route(body=mp4_bytes(), headers={"Content-Type": "video/mp4"})
    claid.looks = 0
    Generation.objects.update(submitted_at=None)  # a minute later: the connection's rate window is free
    second = look(_submit(team, claid), 2)
    assert second.status == "ERROR"
    assert ledger(second) == [("hold", -50), ("refund", 50)]


def test_a_job_past_the_deadline_is_cancelled_upstream_and_refunded(team, unlimited, claid, settings):
    claid.running_looks = 100
    generation = _submit(team, claid)
    settings.GENERATOR_UPSTREAM_DEADLINE_S = 10
    Generation.objects.filter(pk=generation.pk).update(
        upstream_state={
            **generation.upstream_state,
            "submitted_at": (timezone.now() - timedelta(seconds=60)).isoformat(),
        }
    )
    generation = look(generation)
    assert generation.status == "ERROR"
    assert "did not finish within 10 s" in generation.errors[0]["error"]
    assert "/v1/video/generate/7/cancel" in claid.server.paths()
    assert ledger(generation) == [("hold", -50), ("refund", 50)]


def test_a_storage_input_on_an_upstream_engine_is_a_422_that_says_why(team, unlimited, claid, mine_storage):
    from generator.errors import ValidationFailed

    request = GenerateRequest.parse({"input": "storage://mine/a.png", "options": {"prompt": "xyz", "engine": "claid"}})
    with pytest.raises(ValidationFailed) as caught:
        generation_create(team=team, request=request)
    assert "http(s) URL" in caught.value.details["input"][0]


def test_cancel_while_waiting_refunds_and_is_forwarded_upstream(team, unlimited, claid):
    from generator.services.generations import generation_cancel
    from generator.services.upstream_jobs import upstream_cancel

    generation = _submit(team, claid)
    generation = generation_cancel(team=team, generation=generation)
    assert generation.status == "CANCELLED"
    assert ledger(generation) == [("hold", -50), ("refund", 50)]
    upstream_cancel(generation.pk)
    assert "/v1/video/generate/7/cancel" in claid.server.paths()
    # A poll task that was already handed the job changes nothing.
    assert look(generation).status == "CANCELLED"


def test_a_result_redirecting_to_a_loopback_port_outside_the_allow_list_is_refused(team, unlimited, claid):
    claid.video = Route(status=302, headers={"Location": "http://127.0.0.1:9/private.mp4"})
    generation = look(_submit(team, claid), 2)
    assert generation.status == "ERROR"
    assert "could not be downloaded" in generation.errors[0]["error"]
    assert ledger(generation) == [("hold", -50), ("refund", 50)]


def test_5xx_while_polling_backs_off_then_errors_after_ten_minutes(team, unlimited, claid):
    generation = _submit(team, claid)
    claid.poll_route = Route(status=500, body=b"oops")
    generation = look(generation)
    assert (generation.status, generation.upstream_state["errors"]) == ("PROCESSING", 1)
    since = (timezone.now() - timedelta(minutes=11)).isoformat()
    Generation.objects.filter(pk=generation.pk).update(
        upstream_state={**generation.upstream_state, "failing_since": since}
    )
    generation = look(generation)
    assert generation.status == "ERROR"
    assert "kept failing for 10 minutes" in generation.errors[0]["error"]
    assert ledger(generation) == [("hold", -50), ("refund", 50)]


def test_a_burst_on_a_claid_connection_is_spaced_at_one_a_second_instead_of_failing(team, unlimited, claid):
    first, second = _submit(team, claid), _submit(team, claid)
    assert first.stage == "waiting"
    assert (second.status, second.stage) == ("PROCESSING", "submitting")
    assert second.next_poll_at <= timezone.now() + timedelta(seconds=1.1)
    assert claid.submits() == 1
    time.sleep(max(0.0, (second.next_poll_at - timezone.now()).total_seconds()) + 0.05)
    second = look(second)
    assert second.stage == "waiting"
    assert claid.submits() == 2


def test_a_429_or_500_at_submit_books_the_submit_again_and_a_later_look_submits(team, unlimited, claid):
    claid.submit_route = Route(status=429, body=b"{}", headers={"Retry-After": "3"})
    generation = _submit(team, claid)
    assert (generation.status, generation.stage) == ("PROCESSING", "submitting")
    assert generation.next_poll_at >= timezone.now() + timedelta(seconds=2)
    claid.submit_route = Route(status=503, body=b"busy")
    Generation.objects.filter(pk=generation.pk).update(submitted_at=None)
    generation = look(generation)
    assert (generation.stage, generation.upstream_state["errors"]) == ("submitting", 1)
    claid.submit_route = None
    Generation.objects.filter(pk=generation.pk).update(submitted_at=None)
    generation = look(generation, 3)
    assert generation.status == "DONE", generation.errors
    assert ledger(generation) == [("hold", -50)]
