"""Jobs on a Replicate connection against a loopback Replicate (tests/fakes/replicate.py): every switch ends as SPEC 11 says.

The fake follows Replicate's documented shapes; its result is a real H.264 MP4 made with PyAV,
so the download, probe, remux and store are real. Each case checks the ledger: one hold, one
refund when the job ends ERROR or CANCELLED, none when it is DONE.
"""

from __future__ import annotations

import json
from datetime import timedelta

import av
import pytest
from django.utils import timezone

from generator.crypto import encrypt_json
from generator.errors import ValidationFailed
from generator.models import CreditLedger, EngineConnection, Generation
from generator.presenters import generation_to_api
from generator.services.generations import generation_cancel
from generator.services.upstream_jobs import upstream_cancel
from generator.tasks import upstream_poll_task
from generator.upstream import replicate
from generator.upstream.base import Connection
from generator.upstream.registry import get_provider
from tests.fakes.replicate import TOKEN, FakeReplicate, webhook_secret
from tests.harness import bearer
from tests.loopback import Route
from tests.test_upstream_claid import mp4_bytes
from tests.test_worker import png_bytes
from tests.upstream_support import backdate_upstream, ledger, look, look_past_deadline, submit_job

KLING = "kwaivgi/kling-v2.1"


@pytest.fixture(autouse=True)
def _fresh_signing_keys():
    replicate._secrets.clear()
    yield
    replicate._secrets.clear()


@pytest.fixture
def fake(loopback):
    return FakeReplicate(loopback, models=(*replicate.TEMPLATES, "acme/custom"))


def _connect(team, fake, *, model: str = KLING, inputs: dict | None = None) -> EngineConnection:
    parameters: dict = {"model": model, "base_url": fake.server.url("").rstrip("/")}
    if inputs is not None:
        parameters["inputs"] = inputs
    return EngineConnection.objects.create(
        team=team,
        name="rep",
        type="replicate",
        parameters=parameters,
        secrets_encrypted=encrypt_json({"api_key": TOKEN}),
        price_5s=50,
        price_10s=90,
    )


@pytest.fixture
def kling(team, fake):
    return _connect(team, fake)


def _connection(fake, model: str = KLING) -> Connection:
    return Connection(type="replicate", api_key=TOKEN, model=model, base_url=fake.server.url("").rstrip("/"))


def _submit(team, fake, **options) -> Generation:
    body = {"input": fake.server.url("/photo.png"), "options": {"prompt": "steam rising", "engine": "rep", **options}}
    return submit_job(team, body)


REFUNDED = [("hold", -50), ("refund", 50)]


def _errored(generation: Generation, words: str) -> None:
    assert generation.status == "ERROR", (generation.status, generation.stage)
    assert words in generation.errors[0]["error"], generation.errors
    assert TOKEN not in json.dumps(generation.errors)
    assert ledger(generation) == REFUNDED
    assert generation.video_name == ""


# --- the happy path: exact body, waiting without a worker, real MP4 stored ------------------------


def test_a_kling_job_sends_the_rendered_template_waits_and_is_stored_like_a_builtin_video(
    team, unlimited, fake, kling, settings
):
    fake.video = Route(body=mp4_bytes(seconds=10), headers={"Content-Type": "video/mp4"})
    generation = _submit(team, fake, negative_prompt="shake", duration=10)
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting")
    assert generation.lease_expires_at is None
    sent = fake.creates()
    assert len(sent) == 1
    assert sent[0].path == "/v1/models/kwaivgi/kling-v2.1/predictions"
    assert sent[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(sent[0].body) == {
        "input": {
            "start_image": fake.server.url("/photo.png"),
            "prompt": "steam rising",
            "negative_prompt": "shake",
            "duration": 10,
            "mode": "standard",
        }
    }
    upstream_id = generation.engine_info["upstream_id"]
    assert generation.engine_info == {"name": "rep", "type": "replicate", "model": KLING, "upstream_id": upstream_id}
    assert generation.upstream_state["get_url"] == fake.server.url(f"/v1/predictions/{upstream_id}")

    generation = look(generation)
    assert generation.stage == "waiting"
    assert generation.upstream_state["detail"] == {"state": "starting", "started": False}
    generation = look(generation)
    assert (generation.status, generation.stage) == ("DONE", "done"), generation.errors
    assert len(fake.creates()) == 1
    with av.open(str(settings.MEDIA_ROOT / generation.video_name)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert round(float(container.duration / av.time_base)) == 10
    assert (settings.MEDIA_ROOT / generation.poster_name).exists()
    assert ledger(generation) == [("hold", -90)]
    data = generation_to_api(generation)
    assert data["engine"]["upstream_id"] == upstream_id
    assert "/delivery/" not in json.dumps(data)


def test_a_storage_photo_reaches_replicate_as_a_data_uri_of_the_validated_bytes(team, unlimited, fake, kling):
    import base64

    from tests.test_upstream_handover import _local_photo

    photo = png_bytes((400, 300), name="chelsea.png")
    assert len(photo) <= replicate.DATA_URI_MAX_BYTES
    body = {"input": _local_photo(team, "shoe.png", photo), "options": {"prompt": "turn", "engine": "rep"}}
    generation = submit_job(team, body)
    assert generation.stage == "waiting", generation.errors
    start_image = fake.created_bodies()[-1]["input"]["start_image"]
    head, _, data = start_image.partition(",")
    assert head == "data:image/png;base64"
    assert base64.b64decode(data) == photo


@pytest.mark.parametrize(
    ("model", "options", "expected"),
    [
        (
            "kwaivgi/kling-v2.1",
            {"prompt": "turn", "duration": 5},
            {"start_image": "IMG", "prompt": "turn", "duration": 5, "mode": "standard"},
        ),
        (
            "minimax/hailuo-02",
            {"prompt": "turn", "negative_prompt": "blur", "duration": 10},
            {"first_frame_image": "IMG", "prompt": "turn", "duration": 10, "resolution": "768p"},
        ),
        (
            "wan-video/wan-2.5-i2v",
            {"prompt": "turn", "negative_prompt": "blur", "duration": 10},
            {"image": "IMG", "prompt": "turn", "negative_prompt": "blur", "duration": 10, "resolution": "720p"},
        ),
        (
            "wan-video/wan-2.2-i2v-fast",
            {"prompt": "turn", "duration": 5},
            {
                "image": "IMG",
                "prompt": "turn",
                "num_frames": 81,
                "frames_per_second": 16,
                "resolution": "480p",
                "go_fast": True,
            },
        ),
    ],
)
def test_each_shipped_template_becomes_the_input_its_model_documents(fake, model, options, expected):
    provider = get_provider("replicate")
    image = fake.server.url("/photo.png")
    submitted = provider.submit(_connection(fake, model), image_url=image, options=options, webhook_url="")
    assert fake.creates()[-1].path == f"/v1/models/{model}/predictions"
    assert fake.created_bodies()[-1] == {"input": {k: image if v == "IMG" else v for k, v in expected.items()}}
    assert submitted.upstream_id in fake.predictions


def test_a_webhook_url_is_sent_with_the_completed_filter_and_a_connections_own_inputs_replace_the_template(fake):
    provider = get_provider("replicate")
    own = Connection(
        type="replicate",
        api_key=TOKEN,
        model="acme/custom",
        base_url=fake.server.url("").rstrip("/"),
        inputs={"img": "{image_url}", "text": "{prompt}, {duration} seconds", "ar": "{aspect_ratio}", "steps": 20},
    )
    provider.submit(
        own,
        image_url="data:image/png;base64,AAAA",
        options={"prompt": "turn", "duration": 5, "aspect_ratio": "9:16"},
        webhook_url="https://gen.example.test/hooks/replicate/abc",
    )
    assert fake.created_bodies()[-1] == {
        "input": {"img": "data:image/png;base64,AAAA", "text": "turn, 5 seconds", "ar": "9:16", "steps": 20},
        "webhook": "https://gen.example.test/hooks/replicate/abc",
        "webhook_events_filter": ["completed"],
    }
    caps = provider.capabilities(own)
    assert (caps.durations, caps.aspect_ratios) == ((5, 10), ("source", "16:9", "9:16", "1:1", "4:5"))
    assert caps.webhooks
    assert caps.data_uri_max_bytes == 1_000_000


def test_capabilities_follow_the_models_template_and_a_duration_or_shape_it_lacks_is_a_422_naming_it(
    team, unlimited, fake
):
    _connect(team, fake, model="minimax/hailuo-02")
    caps = get_provider("replicate").capabilities(_connection(fake, "minimax/hailuo-02"))
    assert (caps.durations, caps.aspect_ratios) == ((10,), ("source",))
    with pytest.raises(ValidationFailed) as caught:
        _submit(team, fake, duration=5)
    assert list(caught.value.details) == ["options.duration"]
    with pytest.raises(ValidationFailed) as caught:
        _submit(team, fake, duration=10, aspect_ratio="9:16")
    assert list(caught.value.details) == ["options.aspect_ratio"]
    assert not fake.creates()
    assert not CreditLedger.objects.filter(kind="hold").exists()


# --- slow predictions: progress from the upstream's state and logs --------------------------------


def test_a_slow_prediction_shows_its_state_and_the_logs_percent_and_backs_off(team, unlimited, fake, kling):
    fake.running_looks = 3
    generation = _submit(team, fake)
    generation = look(generation)
    assert generation.upstream_state["detail"] == {"state": "starting", "started": False}
    first_gap = generation.next_poll_at - timezone.now()
    generation = look(generation)
    assert generation.upstream_state["detail"] == {"state": "processing", "started": True, "percent": 45}
    assert generation.next_poll_at - timezone.now() > first_gap
    generation = look(generation, 2)
    assert generation.status == "DONE", generation.errors
    assert len(fake.creates()) == 1
    assert ledger(generation) == [("hold", -50)]


def test_percent_is_read_only_from_a_progress_bar_in_the_logs():
    assert (
        replicate.polled_of({"status": "processing", "logs": "step 3\n 7%|▋ | 1/14\n 64%|██████▍   | 9/14"}).detail[
            "percent"
        ]
        == 64
    )
    for logs in ("", None, "resolution 100% of 720p", "seed 12345%|", "frame 12099%|"):
        assert "percent" not in replicate.polled_of({"status": "processing", "logs": logs}).detail


# --- failures: each ends as SPEC 11 says --------------------------------------------------------


def test_a_failed_prediction_is_an_error_with_its_message_and_one_refund(team, unlimited, fake, kling):
    fake.outcome = "failed"
    _errored(look(_submit(team, fake), 2), "did not pass the safety check")


def test_a_prediction_canceled_upstream_is_an_error_with_one_refund(team, unlimited, fake, kling):
    fake.outcome = "canceled"
    _errored(look(_submit(team, fake), 2), "canceled upstream")


def test_a_4xx_at_create_is_an_error_with_the_upstreams_detail_and_a_refund(team, unlimited, fake, kling):
    fake.create_route = Route(
        status=422, body=json.dumps({"detail": "- input.prompt: String should have at most 2500 characters"}).encode()
    )
    _errored(_submit(team, fake), "input.prompt: String should have at most 2500 characters")


def test_a_prediction_id_that_would_change_the_request_path_is_refused_with_a_refund(team, unlimited, fake, kling):
    fake.create_route = Route(status=201, body=json.dumps({"id": "../account", "status": "starting"}).encode())
    _errored(_submit(team, fake), "prediction id")


def test_a_429_at_create_and_while_polling_waits_retry_after_and_keeps_the_job(team, unlimited, fake, kling):
    fake.create_route = Route(
        status=429,
        body=b'{"detail":"Request was throttled. Expected available in 4 seconds."}',
        headers={"Retry-After": "4"},
    )
    before = timezone.now()
    generation = _submit(team, fake)
    assert (generation.status, generation.stage) == ("PROCESSING", "submitting")
    assert generation.next_poll_at >= before + timedelta(seconds=3)
    fake.create_route = None
    generation = look(generation)
    assert generation.stage == "waiting"
    fake.poll_route = Route(status=429, body=b'{"detail":"Request was throttled."}', headers={"Retry-After": "7"})
    before = timezone.now()
    generation = look(generation)
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting")
    assert generation.next_poll_at >= before + timedelta(seconds=6)
    fake.poll_route = None
    generation = look(generation, 2)
    assert generation.status == "DONE", generation.errors
    assert len(fake.creates()) == 2  # the 429 made no prediction; the second create did
    assert len(fake.predictions) == 1
    assert ledger(generation) == [("hold", -50)]


@pytest.mark.parametrize(
    ("detail", "wait_s"),
    [
        ("Request was throttled. Your rate limit resets in ~30s.", 30),
        ("Request was throttled. Expected available in 4 seconds.", 4),
    ],
)
def test_a_429_without_retry_after_waits_as_long_as_replicates_detail_says(
    team, unlimited, fake, kling, detail, wait_s
):
    generation = _submit(team, fake)
    fake.poll_route = Route(status=429, body=json.dumps({"detail": detail}).encode())
    before = timezone.now()
    generation = look(generation)
    assert (generation.status, generation.stage) == ("PROCESSING", "waiting")
    assert (
        before + timedelta(seconds=wait_s - 1) <= generation.next_poll_at <= timezone.now() + timedelta(seconds=wait_s)
    )


def test_500s_while_polling_back_off_then_error_after_ten_minutes_with_a_refund(team, unlimited, fake, kling):
    generation = _submit(team, fake)
    fake.poll_route = Route(status=500, body=b"internal error")
    generation = look(generation)
    assert (generation.status, generation.upstream_state["errors"]) == ("PROCESSING", 1)
    generation = look(generation)
    assert generation.upstream_state["errors"] == 2
    backdate_upstream(generation, "failing_since", seconds=11 * 60)
    _errored(look(generation), "kept failing for 10 minutes")


def test_timeouts_at_create_and_while_polling_are_retried_not_failed(team, unlimited, fake, kling, monkeypatch):
    monkeypatch.setattr("generator.upstream.http.CALL_DEADLINE_S", 0.5)
    fake.create_route = Route(status=201, body=b"{}", delay_s=3)
    generation = _submit(team, fake)
    assert (generation.status, generation.stage, generation.upstream_state["errors"]) == ("PROCESSING", "submitting", 1)
    fake.create_route = None
    generation = look(generation)
    assert generation.stage == "waiting"
    fake.poll_route = Route(status=200, body=b"{}", delay_s=3)
    generation = look(generation)
    assert (generation.status, generation.stage, generation.upstream_state["errors"]) == ("PROCESSING", "waiting", 1)
    fake.poll_route = None
    generation = look(generation, 2)
    assert generation.status == "DONE", generation.errors
    assert ledger(generation) == [("hold", -50)]


def test_a_result_that_is_not_a_video_is_an_error_with_a_refund_and_nothing_kept(
    team, unlimited, fake, kling, settings
):
    fake.video = Route(body=b"<html>502 Bad Gateway</html>", headers={"Content-Type": "text/html"})
    _errored(look(_submit(team, fake), 2), "not a video")
    assert not list(settings.MEDIA_ROOT.rglob("*.mp4"))


def test_an_oversized_result_is_an_error_with_a_refund_and_nothing_kept(team, unlimited, fake, kling, settings):
    settings.GENERATOR_RESULT_MAX_BYTES = 2000
    assert len(fake.video.body) > 2000
    _errored(look(_submit(team, fake), 2), "could not be downloaded")
    assert not list(settings.MEDIA_ROOT.rglob("*.mp4"))


def test_a_result_redirecting_to_127_0_0_1_outside_the_allow_list_is_refused_with_a_refund(
    team, unlimited, fake, kling
):
    fake.video = Route(status=302, headers={"Location": "http://127.0.0.1:9/private.mp4"})
    _errored(look(_submit(team, fake), 2), "could not be downloaded")


def test_a_list_output_takes_its_video_and_urls_on_another_origin_never_get_the_key(team, unlimited, fake, kling):
    fake.output_list = True
    fake.foreign_urls = True  # urls.get/cancel name 127.0.0.1:9: polled at the API's own address instead
    generation = _submit(team, fake)
    assert generation.upstream_state["get_url"].startswith(fake.server.url("/v1/predictions/"))
    generation = look(generation, 2)
    assert generation.status == "DONE", generation.errors
    assert ledger(generation) == [("hold", -50)]


def test_cancel_while_waiting_refunds_and_is_forwarded_upstream(team, unlimited, fake, kling):
    generation = _submit(team, fake)
    upstream_id = generation.engine_info["upstream_id"]
    generation = generation_cancel(team=team, generation=generation)
    assert generation.status == "CANCELLED"
    assert ledger(generation) == REFUNDED
    upstream_cancel(generation.pk)
    cancel = [seen for seen in fake.server.requests if seen.path == f"/v1/predictions/{upstream_id}/cancel"]
    assert [(seen.method, seen.headers["Authorization"]) for seen in cancel] == [("POST", f"Bearer {TOKEN}")]
    assert fake.predictions[upstream_id]["status"] == "canceled"
    assert look(generation).status == "CANCELLED"
    assert ledger(generation) == REFUNDED


def test_a_prediction_past_the_deadline_is_cancelled_upstream_and_refunded(team, unlimited, fake, kling, settings):
    fake.running_looks = 100
    generation = _submit(team, fake)
    _errored(look_past_deadline(generation, settings), "did not finish within 10 s")
    assert fake.predictions[generation.engine_info["upstream_id"]]["status"] == "canceled"


# --- connecting: the key is tested, 422 with Replicate's reason --------------------------------------


def _post_engine(client, key, fake, **parameters):
    body = {
        "name": "rep",
        "type": "replicate",
        "credentials": {"api_key": parameters.pop("api_key", TOKEN)},
        "parameters": {"base_url": fake.server.url("").rstrip("/"), **parameters},
    }
    return client.post("/v1/engines", json.dumps(body), content_type="application/json", **bearer(key))


def test_connecting_tests_the_key_with_the_account_call_and_a_refusal_is_a_422_with_replicates_reason(
    client, key, fake
):
    refused = _post_engine(client, key, fake, model=KLING, api_key="r8_wrong-key-000")
    assert refused.status_code == 422, refused.content
    assert "You did not pass a valid authentication token" in json.dumps(refused.json())
    assert "r8_wrong-key-000" not in refused.content.decode()
    malformed = _post_engine(client, key, fake, model="kling-v2.1", inputs={"image": "{image_url}"})
    assert malformed.status_code == 422
    assert "owner/name" in json.dumps(malformed.json())
    assert not EngineConnection.objects.exists()
    assert fake.calls_to("/v1/account") == 1  # the malformed model was refused before any call

    made = _post_engine(client, key, fake, model=KLING)
    assert made.status_code == 201, made.content
    data = made.json()["data"] if "data" in made.json() else made.json()
    assert (data["durations"], data["aspect_ratios"]) == ([5, 10], ["source"])
    assert TOKEN not in made.content.decode()
    assert fake.calls_to("/v1/account") == 2


# --- webhooks: Standard Webhooks signatures with the account's key ------------------------------------


def test_verify_webhook_takes_a_good_signature_and_refuses_bad_stale_or_tampered_ones(team, unlimited, fake, kling):
    provider = get_provider("replicate")
    connection = _connection(fake)
    generation = look(_submit(team, fake), 2)
    upstream_id = generation.engine_info["upstream_id"]

    headers, body = fake.signed_webhook(upstream_id)
    assert provider.verify_webhook(connection, headers=headers, body=body)
    assert replicate.polled_of(json.loads(body)).status == "done"
    titled = {name.title(): value for name, value in headers.items()}  # as a WSGI server spells them
    assert provider.verify_webhook(connection, headers=titled, body=body)

    bad_headers, bad_body = fake.signed_webhook(upstream_id, secret=webhook_secret())
    assert not provider.verify_webhook(connection, headers=bad_headers, body=bad_body)
    stale_headers, stale_body = fake.signed_webhook(upstream_id, age_s=600)
    assert not provider.verify_webhook(connection, headers=stale_headers, body=stale_body)
    assert not provider.verify_webhook(connection, headers=headers, body=body.replace(b"succeeded", b"failed"))
    assert not provider.verify_webhook(connection, headers={**headers, "webhook-signature": "garbage"}, body=body)
    assert not provider.verify_webhook(connection, headers={}, body=body)
    # The account's signing key was fetched once with the connection's key, then kept.
    assert fake.calls_to("/v1/webhooks/default/secret") == 1


def test_without_a_signing_key_every_webhook_is_refused_and_a_failed_fetch_is_not_repeated_at_once(fake):
    provider = get_provider("replicate")
    wrong = Connection(type="replicate", api_key="r8_revoked", model=KLING, base_url=fake.server.url("").rstrip("/"))
    fake.predictions["rpX"] = {
        "model": KLING,
        "input": {},
        "webhook": None,
        "status": "succeeded",
        "looks": 1,
        "urls": {},
    }
    headers, body = fake.signed_webhook("rpX")
    assert not provider.verify_webhook(wrong, headers=headers, body=body)
    assert not provider.verify_webhook(wrong, headers=headers, body=body)
    assert fake.calls_to("/v1/webhooks/default/secret") == 1


# --- end to end through this server's webhook intake (POST /hooks/upstream/<token>/) ----------------


@pytest.fixture
def public(settings, fake):
    """This server's public address is one Replicate can reach (an allow-listed https host:port, as in development)."""
    settings.GENERATOR_PUBLIC_URL = "https://127.0.0.1:8443"
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [*settings.GENERATOR_FETCH_ALLOW_HOSTS, "127.0.0.1:8443"]


def _deliver(client, generation: Generation, fake, **signing) -> int:
    """Post the fake's signed `completed` webhook to the address Replicate was given, as Replicate would."""
    hook = fake.predictions[generation.engine_info["upstream_id"]]["webhook"]
    headers, body = fake.signed_webhook(generation.engine_info["upstream_id"], **signing)
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    return client.post(
        hook.removeprefix("https://127.0.0.1:8443"), data=body, content_type="application/json", **meta
    ).status_code


def test_a_signed_completed_webhook_through_the_intake_makes_the_look_at_once_and_the_job_ends_done(
    client, team, unlimited, fake, kling, public, sent, django_capture_on_commit_callbacks, settings
):
    fake.running_looks = 100  # only the webhook's look can see it end
    generation = _submit(team, fake)
    create = fake.created_bodies()[-1]
    assert create["webhook"].startswith("https://127.0.0.1:8443/hooks/upstream/")
    assert create["webhook_events_filter"] == ["completed"]
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now() + timedelta(seconds=16))
    fake.predictions[generation.engine_info["upstream_id"]]["status"] = "succeeded"

    with django_capture_on_commit_callbacks(execute=True):
        assert _deliver(client, generation, fake, secret=webhook_secret()) == 401  # a forged call books nothing
    assert sent == []
    with django_capture_on_commit_callbacks(execute=True):
        assert _deliver(client, generation, fake) == 202
    assert sent == [("generator.tasks.upstream_poll_task", (str(generation.pk),))]
    upstream_poll_task(*sent[0][1])  # the task the broker would run
    generation.refresh_from_db()
    assert (generation.status, generation.stage) == ("DONE", "done"), generation.errors
    with av.open(str(settings.MEDIA_ROOT / generation.video_name)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    assert ledger(generation) == [("hold", -50)]
    assert len(fake.creates()) == 1


def test_an_http_public_address_is_not_given_to_replicate_and_the_job_is_polled(team, unlimited, fake, kling, settings):
    settings.GENERATOR_PUBLIC_URL = "http://127.0.0.1:8123"
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [*settings.GENERATOR_FETCH_ALLOW_HOSTS, "127.0.0.1:8123"]
    generation = _submit(team, fake)
    assert "webhook" not in fake.created_bodies()[-1]
    assert look(generation, 2).status == "DONE"
