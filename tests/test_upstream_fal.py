"""Jobs on a fal connection, end to end against the loopback fal queue (tests/fakes/fal.py).

The fake follows fal's documented queue shapes (generator/upstream/fal.py quotes them); its
videos are real H.264 MP4s, so the download, probe, remux and store are real. Every case ends
as SPEC 11 says, with the ledger checked: one hold, plus one refund when the job ends ERROR.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import av
import pytest
from django.utils import timezone

from generator.errors import ValidationFailed
from generator.models import Generation
from generator.presenters import generation_to_api
from generator.services.generations import generation_cancel
from generator.services.upstream_jobs import upstream_cancel
from generator.upstream import fal as fal_module
from generator.upstream.base import Connection, Submitted, UpstreamError
from generator.upstream.fal import TEMPLATES, FalProvider
from generator.upstream.templates import template_problems
from tests.fakes.fal import KEY, MODEL, FakeFal, make_fal_connection, rate_limited, server_error, stall
from tests.harness import bearer
from tests.loopback import Route
from tests.test_upstream_webhooks import public  # noqa: F401 - the fixture: this server reachable by fal
from tests.test_worker import png_bytes
from tests.upstream_support import backdate_upstream, ledger, look, look_past_deadline, submit_job

WAN = "fal-ai/wan/v2.2-a14b/image-to-video"
HAILUO = "fal-ai/minimax/hailuo-02/standard/image-to-video"


@pytest.fixture
def fake(loopback):
    fake = FakeFal(loopback)
    loopback.routes["/photo.png"] = Route(body=png_bytes((400, 300)), headers={"Content-Type": "image/png"})
    fal_module._jwks_cache.clear()
    return fake


@pytest.fixture
def fal(team, fake):
    return make_fal_connection(team, fake)


def _submit(team, fake, **options) -> Generation:
    options = {"prompt": "steam rising", "engine": "fal", **options}
    return submit_job(team, {"input": fake.server.url("/photo.png"), "options": options})


_look, _ledger = look, ledger


def _probe(settings, generation) -> tuple[str, float]:
    with av.open(str(settings.MEDIA_ROOT / generation.video_name)) as container:
        return container.streams.video[0].codec_context.name, float(container.duration / av.time_base)


def _refunded(generation, price: int = 40) -> bool:
    return _ledger(generation) == [("hold", -price), ("refund", price)]


# --- the happy path ------------------------------------------------------------------------------


def test_a_fal_job_goes_through_the_queue_with_its_positions_and_is_stored_like_a_builtin_video(
    team, unlimited, fake, fal, settings
):
    fake.queue_looks, fake.progress_looks = 2, 1
    generation = _submit(team, fake)
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting")
    job = fake.last()
    assert generation.engine_info["upstream_id"] == job.request_id
    assert job.headers["Authorization"] == f"Key {KEY}"
    # The rendered Kling template is exactly what fal receives: duration as its string enum,
    # the prompt's guidance as cfg_scale, no negative_prompt key when the job has none.
    assert job.body == {
        "prompt": "steam rising",
        "image_url": fake.server.url("/photo.png"),
        "duration": "5",
        "cfg_scale": 0.5,
    }
    assert generation.upstream_state["status_url"].endswith(f"/fal-ai/kling-video/requests/{job.request_id}/status")
    generation = _look(generation)
    assert generation.upstream_state["detail"] == {"state": "IN_QUEUE", "started": False, "queue_position": 1}
    generation = _look(generation)
    assert generation.upstream_state["detail"]["queue_position"] == 0
    generation = _look(generation)
    assert generation.upstream_state["detail"] == {"state": "IN_PROGRESS", "started": True}
    generation = _look(generation)
    assert (generation.status, generation.stage) == ("DONE", "done"), generation.errors
    codec, seconds = _probe(settings, generation)
    assert (codec, round(seconds)) == ("h264", 5)
    assert (settings.MEDIA_ROOT / generation.poster_name).exists()
    assert _ledger(generation) == [("hold", -40)]
    assert len(fake.submits()) == 1
    data = generation_to_api(generation)
    assert data["engine"] == {"name": "fal", "type": "fal", "model": MODEL, "upstream_id": job.request_id}
    assert "/files/" not in json.dumps(data)  # fal's own link is never shown


def test_a_10_s_kling_job_asks_for_the_string_10_and_gets_a_10_s_video(team, unlimited, fake, fal, settings):
    fake.video_seconds = 10.0
    generation = _look(_submit(team, fake, duration=10, negative_prompt="shake"), 2)
    assert generation.status == "DONE", generation.errors
    assert fake.last().body["duration"] == "10"
    assert fake.last().body["negative_prompt"] == "shake"
    assert round(_probe(settings, generation)[1]) == 10
    assert _ledger(generation) == [("hold", -80)]


def test_the_wan_and_hailuo_templates_render_their_own_inputs_and_durations(team, unlimited, fake):
    make_fal_connection(team, fake, name="wan", model=WAN)
    make_fal_connection(team, fake, name="hailuo", model=HAILUO)
    for duration, frames in ((5, 81), (10, 161)):  # Wan's length is frames at 16 fps: 5.06 s, 10.06 s
        _submit(team, fake, engine="wan", duration=duration)
        assert fake.last().model == WAN
        assert fake.last().body == {
            "prompt": "steam rising",
            "image_url": fake.server.url("/photo.png"),
            "num_frames": frames,
            "frames_per_second": 16,
        }
    with pytest.raises(ValidationFailed) as caught:
        _submit(team, fake, engine="hailuo")  # 5 s: Hailuo 02 makes 6 or 10
    assert "options.duration" in caught.value.details
    _submit(team, fake, engine="hailuo", duration=10)
    assert fake.last().body == {
        "prompt": "steam rising",
        "image_url": fake.server.url("/photo.png"),
        "duration": "10",
        "prompt_optimizer": True,
    }
    with pytest.raises(ValidationFailed) as caught:
        _submit(team, fake, engine="wan", aspect_ratio="9:16")
    assert "options.aspect_ratio" in caught.value.details


def test_a_connections_own_inputs_for_an_unshipped_model_are_rendered_exactly(team, unlimited, fake):
    model = "acme/i2v-pro/fast"
    fake.serve_model(model)
    inputs = {"image": "{image_url}", "text": "{prompt}", "seconds": "{duration}", "shape": "{aspect_ratio}", "n": 2}
    make_fal_connection(team, fake, name="own", model=model, inputs=inputs)
    generation = _submit(team, fake, engine="own", duration=10, aspect_ratio="9:16", prompt={"text": "a slow turn"})
    assert fake.last().body == {
        "image": fake.server.url("/photo.png"),
        "text": "a slow turn",
        "seconds": 10,
        "shape": "9:16",
        "n": 2,
    }
    # Status and result live under owner/app, without the model's subpath.
    assert generation.upstream_state["status_url"].endswith(f"/acme/i2v-pro/requests/{fake.last().request_id}/status")


def test_a_storage_photo_reaches_fal_as_a_data_uri_of_the_validated_bytes_and_the_job_finishes(
    team, unlimited, fake, fal, settings
):
    import base64

    from tests.test_upstream_handover import _local_photo

    photo = png_bytes((400, 300), name="chelsea.png")
    assert len(photo) <= fal_module.DATA_URI_MAX_BYTES
    options = {"engine": "fal", "prompt": {"generate": True}}
    generation = submit_job(team, {"input": _local_photo(team, "shoe.png", photo), "options": options})
    assert generation.stage == "waiting", generation.errors
    head, _, data = fake.last().body["image_url"].partition(",")
    assert (head, base64.b64decode(data)) == ("data:image/png;base64", photo)
    # An automatic prompt is written here from the photo (as builtin would) and sent as text.
    prompt = fake.last().body["prompt"]
    assert isinstance(prompt, str)
    assert prompt
    assert prompt == generation.generated_prompt
    generation = _look(generation, 2)
    assert generation.status == "DONE", generation.errors
    assert generation_to_api(generation)["result"]["input_object"]["generated_prompt"] == prompt
    assert _ledger(generation) == [("hold", -40)]


def test_every_shipped_template_is_valid_and_offers_durations_the_api_takes():
    for model, template in TEMPLATES.items():
        assert template_problems(template.inputs) == [], model
        assert set(template.durations) <= {5, 10}, model
        assert "{image_url}" in template.inputs.values(), model


# --- failures and limits -------------------------------------------------------------------------


def test_a_429_while_polling_waits_retry_after_and_keeps_the_job(team, unlimited, fake, fal):
    generation = _submit(team, fake)
    fake.push("status", rate_limited(retry_after=7))
    before = timezone.now()
    generation = _look(generation)
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting")
    assert generation.next_poll_at >= before + timedelta(seconds=6)
    generation = _look(generation, 2)
    assert generation.status == "DONE", generation.errors
    assert len(fake.submits()) == 1
    assert _ledger(generation) == [("hold", -40)]


def test_a_429_at_submit_books_the_submit_again_and_a_later_look_submits_once(team, unlimited, fake, fal):
    fake.push("submit", rate_limited(retry_after=3))
    generation = _submit(team, fake)
    assert (generation.status, generation.stage) == ("PROCESSING", "submitting")
    assert generation.next_poll_at >= timezone.now() + timedelta(seconds=2)
    assert fake.submits() == []
    generation = _look(generation, 3)
    assert generation.status == "DONE", generation.errors
    assert len(fake.submits()) == 1
    assert _ledger(generation) == [("hold", -40)]


def test_500s_back_off_and_end_error_with_a_refund_after_ten_minutes(team, unlimited, fake, fal):
    fake.push("status", server_error(), times=3)
    generation = _look(_submit(team, fake), 2)
    assert (generation.status, generation.upstream_state["errors"]) == ("PROCESSING", 2)
    assert generation.upstream_state["failing_since"]
    backdate_upstream(generation, "failing_since", seconds=11 * 60)
    generation = _look(generation)
    assert (generation.status, _refunded(generation)) == ("ERROR", True)
    assert generation.errors[0]["error"].startswith(
        "the upstream kept failing for 10 minutes: the upstream answered 500"
    )


def test_a_timeout_is_retried_like_a_5xx_and_the_job_then_finishes(team, unlimited, fake, fal, monkeypatch):
    monkeypatch.setattr("generator.upstream.http.CALL_DEADLINE_S", 0.5)
    generation = _submit(team, fake)
    fake.push("status", stall(3))
    started = time.monotonic()
    generation = _look(generation)
    assert time.monotonic() - started < 2.5
    assert (generation.status, generation.upstream_state["errors"]) == ("PROCESSING", 1)
    generation = _look(generation, 2)
    assert generation.status == "DONE", generation.errors
    assert _ledger(generation) == [("hold", -40)]


def test_a_failed_fal_job_ends_error_with_fals_message_and_one_refund(team, unlimited, fake, fal):
    fake.outcome = "failed"
    generation = _look(_submit(team, fake), 2)
    assert generation.status == "ERROR"
    assert "the subject could not be found" in generation.errors[0]["error"]
    assert KEY not in json.dumps(generation.errors)
    assert _refunded(generation)


def test_a_refusal_at_submit_ends_error_with_fals_detail_and_one_refund(team, unlimited, fake, fal):
    fake.push("submit", Route(status=422, body=json.dumps({"detail": "image_url: unsupported image"}).encode()))
    generation = _submit(team, fake)
    assert generation.status == "ERROR"
    assert "image_url: unsupported image" in generation.errors[0]["error"]
    assert _refunded(generation)


def test_a_request_id_that_would_change_the_request_path_ends_error_with_a_refund(team, unlimited, fake, fal):
    fake.push("submit", Route(body=json.dumps({"request_id": "../../admin"}).encode()))
    generation = _submit(team, fake)
    assert generation.status == "ERROR"
    assert "request id this server does not take" in generation.errors[0]["error"]
    assert _refunded(generation)
    assert not [seen for seen in fake.server.requests if "admin" in seen.path]


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ("not_video", "not a video"),
        ("oversized", "could not be downloaded"),
        ("redirect_private", "could not be downloaded"),
        ("no_video", "without a video link"),
    ],
)
def test_a_result_that_is_not_a_usable_video_is_an_error_with_a_refund_and_nothing_kept(
    team, unlimited, fake, fal, settings, outcome, reason
):
    settings.GENERATOR_RESULT_MAX_BYTES = 1024 * 1024
    fake.outcome = outcome
    generation = _look(_submit(team, fake), 2)
    assert generation.status == "ERROR"
    assert reason in generation.errors[0]["error"], generation.errors
    assert _refunded(generation)
    assert generation.video_name == ""
    assert not list(settings.MEDIA_ROOT.rglob("*.mp4"))
    if outcome == "redirect_private":
        assert "/private.mp4" not in fake.server.paths()


def test_a_slow_job_is_looked_at_until_it_ends_and_one_past_the_deadline_is_cancelled_upstream(
    team, unlimited, fake, fal, settings
):
    fake.job_seconds = 1.0
    generation = _look(_submit(team, fake))
    assert generation.upstream_state["detail"] == {"state": "IN_PROGRESS", "started": True}
    time.sleep(1.1)
    assert _look(generation).status == "DONE"
    fake.job_seconds = 600.0
    late = look_past_deadline(_submit(team, fake), settings)
    assert fake.cancels == [late.engine_info["upstream_id"]]
    assert (late.status, late.errors[0]["error"]) == ("ERROR", "the upstream did not finish within 10 s")
    assert any(seen.method == "PUT" and seen.path.endswith("/cancel") for seen in fake.server.requests)
    assert _refunded(late)


def test_cancel_while_waiting_refunds_and_is_forwarded_as_a_put_to_the_cancel_url(team, unlimited, fake, fal):
    fake.queue_looks = 5
    generation = generation_cancel(team=team, generation=_submit(team, fake))
    assert generation.status == "CANCELLED"
    assert _refunded(generation)
    upstream_cancel(generation.pk)
    request_id = generation.engine_info["upstream_id"]
    assert fake.cancels == [request_id]
    put = [seen for seen in fake.server.requests if seen.method == "PUT"]
    assert [seen.path for seen in put] == [f"/fal-ai/kling-video/requests/{request_id}/cancel"]
    assert put[0].headers["Authorization"] == f"Key {KEY}"
    assert _look(generation).status == "CANCELLED"


# --- the connection test -------------------------------------------------------------------------


def _connect(client, key, fake, api_key=KEY, **parameters):
    body = {
        "name": "fal",
        "type": "fal",
        "credentials": {"api_key": api_key},
        "parameters": {"model": MODEL, "base_url": fake.url(), **parameters},
    }
    return client.post("/v1/engines", json.dumps(body), content_type="application/json", **bearer(key))


def test_connecting_fal_tests_the_key_with_one_status_lookup_and_a_bad_key_is_a_422_with_fals_reason(client, key, fake):
    bad = _connect(client, key, fake, api_key="wrong-key")
    assert bad.status_code == 422, bad.content
    assert "Invalid Key authorization header" in bad.json()["error_details"]["credentials"][0]
    assert "wrong-key" not in bad.content.decode()
    good = _connect(client, key, fake)
    assert good.status_code == 201, good.content
    data = good.json()["data"]
    assert (data["durations"], data["aspect_ratios"]) == ([5, 10], ["source"])
    probes = [seen for seen in fake.server.requests if "/requests/" in seen.path]
    assert [(seen.method, seen.path) for seen in probes] == [
        ("GET", f"/fal-ai/kling-video/requests/{fal_module.PROBE_REQUEST_ID}/status")
    ] * 2
    assert fake.submits() == []  # testing costs nothing upstream


def test_a_fal_connection_without_a_template_or_with_a_bad_one_is_a_422_naming_parameters_inputs(client, key, fake):
    unshipped = _connect(client, key, fake, model="acme/other-model")
    assert list(unshipped.json()["error_details"]) == ["parameters.inputs"]
    faulty = _connect(client, key, fake, model="acme/other-model", inputs={"prompt": "{prompt}"})
    assert faulty.json()["error_details"]["parameters.inputs"] == ["the template must place {image_url}"]
    assert not [seen for seen in fake.server.requests if "/requests/" in seen.path]  # refused before any call


def test_a_5xx_during_the_connection_test_is_a_422_too(client, key, fake):
    fake.server.fallback = lambda seen: Route(status=503, body=b"busy")
    answer = _connect(client, key, fake)
    assert answer.status_code == 422
    assert "503" in answer.json()["error_details"]["credentials"][0]


# --- the provider on its own: webhooks, URLs it will not follow ----------------------------------


def _connection(fake, **overrides) -> Connection:
    return Connection(type="fal", api_key=KEY, model=MODEL, base_url=fake.url(), **overrides)


def test_submit_asks_fal_for_a_webhook_with_the_fal_webhook_query_parameter(fake):
    FalProvider().submit(
        _connection(fake),
        image_url="https://shop.example/a.jpg",
        options={"prompt": "x"},
        webhook_url="https://us/w?t=1",
    )
    seen = next(seen for seen in fake.server.requests if seen.method == "POST")
    assert seen.path == f"/{MODEL}?fal_webhook=https%3A%2F%2Fus%2Fw%3Ft%3D1"
    assert fake.last().webhook_url == "https://us/w?t=1"


def test_urls_in_fals_answer_on_another_host_are_never_sent_the_key(fake):
    answer = {
        "request_id": "r-1",
        "status_url": "https://elsewhere.example/steal/status",
        "response_url": "https://elsewhere.example/steal",
        "cancel_url": "https://elsewhere.example/steal/cancel",
    }
    fake.push("submit", Route(body=json.dumps(answer).encode()))
    submitted = FalProvider().submit(_connection(fake), image_url="https://shop.example/a.jpg", options={})
    own = f"{fake.url()}/fal-ai/kling-video/requests/r-1"
    assert submitted.state == {"status_url": f"{own}/status", "response_url": own, "cancel_url": f"{own}/cancel"}


def test_a_model_id_that_is_not_owner_app_is_refused_before_any_call(fake):
    for model in ("kling", "fal-ai/../admin", "fal-ai/x?y=1"):
        with pytest.raises(UpstreamError):
            FalProvider().test(Connection(type="fal", api_key=KEY, model=model, base_url=fake.url()))
    assert fake.server.requests == []


def test_capabilities_follow_the_models_template_and_take_data_uris_and_webhooks(fake):
    caps = FalProvider().capabilities(_connection(fake))
    assert (caps.durations, caps.aspect_ratios, caps.webhooks) == ((5, 10), ("source",), True)
    assert caps.data_uri_max_bytes == fal_module.DATA_URI_MAX_BYTES
    assert FalProvider().capabilities(Connection(type="fal", api_key="k", model=HAILUO)).durations == (10,)


def test_verify_webhook_accepts_fals_signature_and_refuses_a_bad_a_stale_or_a_tampered_one(fake):
    provider, connection = FalProvider(), _connection(fake)
    request_id = provider.submit(connection, image_url="https://shop.example/a.jpg", options={}).upstream_id
    headers, body = fake.webhook(request_id)
    assert json.loads(body)["status"] == "OK"
    assert provider.verify_webhook(connection, headers=headers, body=body)
    lowered = {name.lower(): value for name, value in headers.items()}
    assert provider.verify_webhook(connection, headers=lowered, body=body)
    assert not provider.verify_webhook(connection, headers=headers, body=body + b" ")
    assert not provider.verify_webhook(connection, headers=fake.webhook(request_id, bad_signature=True)[0], body=body)
    stale_headers, stale_body = fake.webhook(request_id, timestamp=int(time.time()) - 301)
    assert not provider.verify_webhook(connection, headers=stale_headers, body=stale_body)
    future_headers, future_body = fake.webhook(request_id, timestamp=int(time.time()) + 301)
    assert not provider.verify_webhook(connection, headers=future_headers, body=future_body)
    for missing in ("X-Fal-Webhook-Signature", "X-Fal-Webhook-Timestamp", "X-Fal-Webhook-User-Id"):
        assert not provider.verify_webhook(
            connection, headers={k: v for k, v in headers.items() if k != missing}, body=body
        )
    garbled = {**headers, "X-Fal-Webhook-Signature": "zz" + headers["X-Fal-Webhook-Signature"][2:]}
    assert not provider.verify_webhook(connection, headers=garbled, body=body)
    # The JWKS is fetched once and cached; a bad signature refetches it at most once a minute.
    assert fake.server.paths().count("/.well-known/jwks.json") == 1


def test_verify_webhook_refuses_everything_when_the_jwks_cannot_be_had(fake):
    provider, connection = FalProvider(), _connection(fake)
    request_id = provider.submit(connection, image_url="https://shop.example/a.jpg", options={}).upstream_id
    headers, body = fake.webhook(request_id)
    fake.push("jwks", server_error(), times=2)
    assert not provider.verify_webhook(connection, headers=headers, body=body)
    assert provider.verify_webhook(connection, headers=headers, body=body)  # once it answers again


def test_poll_reads_a_completed_status_with_an_error_as_a_failed_job(fake):
    provider, connection = FalProvider(), _connection(fake)
    submitted = provider.submit(connection, image_url="https://shop.example/a.jpg", options={})
    fake.push(
        "status", Route(body=json.dumps({"status": "COMPLETED", "error": "OOM", "error_type": "runner"}).encode())
    )
    polled = provider.poll(connection, submitted)
    assert (polled.status, polled.error) == ("failed", "OOM (runner)")
    assert provider.poll(connection, Submitted(upstream_id=submitted.upstream_id, state={})).status == "running"


# --- end to end through this server's webhook intake (/hooks/upstream/<token>/) ------------------


def _deliver(client, fake, **kwargs):
    """POST fal's webhook for the last job to the fal_webhook address it was given, through Django's client."""
    job = fake.last()
    assert job.webhook_url.startswith("http://127.0.0.1:8123/hooks/upstream/")
    headers, body = fake.webhook(job.request_id, **kwargs)
    extra = {name: value for name, value in headers.items() if name != "Content-Type"}
    path = job.webhook_url.removeprefix("http://127.0.0.1:8123")
    return client.post(path, data=body, content_type="application/json", headers=extra)


@pytest.mark.usefixtures("public")
def test_a_signed_fal_webhook_books_a_look_at_once_and_the_job_finishes_on_it(
    client, team, unlimited, fake, fal, sent, settings, django_capture_on_commit_callbacks
):
    fake.progress_looks = 3
    generation = _look(_submit(team, fake))
    assert generation.upstream_state["detail"]["state"] == "IN_PROGRESS"
    fake.progress_looks = 0  # fal finished; it calls the webhook
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now() + timedelta(seconds=16))
    for bad in ({"bad_signature": True}, {"timestamp": int(time.time()) - 600}):
        with django_capture_on_commit_callbacks(execute=True):
            assert _deliver(client, fake, **bad).status_code == 401
    assert sent == []
    with django_capture_on_commit_callbacks(execute=True):
        assert _deliver(client, fake).status_code == 202
    assert sent == [("generator.tasks.upstream_poll_task", (str(generation.pk),))]
    generation = _look(generation)  # what the poll task does: the look, not the webhook, decides
    assert generation.status == "DONE", generation.errors
    assert _probe(settings, generation)[0] == "h264"
    assert _ledger(generation) == [("hold", -40)]
    assert len(fake.submits()) == 1


def test_the_fakes_automatic_webhook_arrives_when_a_timed_job_ends_and_verifies(fake):
    """What the e2e benchmark relies on: jobs of `job_seconds` each, their webhooks POSTed unasked."""
    from tests.harness import wait_for

    fake.job_seconds, fake.auto_webhooks = 0.3, True
    fake.server.routes["/hook"] = Route(status=202, body=b"{}")
    provider, connection = FalProvider(), _connection(fake)
    submitted = provider.submit(
        connection, image_url="https://shop.example/a.jpg", options={}, webhook_url=fake.server.url("/hook")
    )
    assert provider.poll(connection, submitted).status == "running"
    assert wait_for(lambda: fake.delivered, timeout_s=5)
    assert fake.delivered == [(submitted.upstream_id, 202)]
    hook = next(seen for seen in fake.server.requests if seen.path == "/hook")
    assert provider.verify_webhook(connection, headers=hook.headers, body=hook.body)
    assert json.loads(hook.body)["payload"]["video"]["url"].endswith("/output.mp4")
    assert provider.poll(connection, submitted).status == "done"
