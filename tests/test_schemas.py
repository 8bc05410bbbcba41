"""parse_generate_request: every rule of a generate request (docs/api.md), all faults named at once."""

from __future__ import annotations

import pytest

from generator.errors import ValidationFailed
from generator.models import Storage
from generator.services.generations import parse_generate_request
from tests.factories import make_team

URL = "https://shop.example/shoe.jpg"


def body(**options) -> dict:
    return {"input": URL, "options": {"prompt": "slow zoom in", **options}}


def refused(payload, team=None) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_generate_request(payload, team=team)
    assert caught.value.status == 422
    assert caught.value.details
    return caught.value.details


# Every test's team has a local storage named "mine".
pytestmark = pytest.mark.usefixtures("mine_storage")


def test_minimal_body_is_normalised_with_defaults(team):
    request = parse_generate_request({"input": URL, "options": {"prompt": "slow zoom in"}}, team=team)
    assert request.echo() == {
        "input": URL,
        "options": {"prompt": "slow zoom in", "duration": 5, "guidance_scale": 0.5},
    }
    assert request.output is None


def test_full_body_keeps_output_and_turns_duration_into_int(team):
    payload = {
        "input": "storage://mine/photos/shoe.jpg",
        "output": "storage://mine/videos/",
        "options": {
            "prompt": {"generate": True, "guidelines": "gentle light"},
            "negative_prompt": "shake",
            "duration": "10",
            "guidance_scale": 1,
        },
    }
    request = parse_generate_request(payload, team=team)
    assert request.echo() == {
        "input": "storage://mine/photos/shoe.jpg",
        "output": "storage://mine/videos/",
        "options": {
            "prompt": {"generate": True, "guidelines": "gentle light"},
            "negative_prompt": "shake",
            "duration": 10,
            "guidance_scale": 1.0,
        },
    }
    assert request.duration == 10


@pytest.mark.parametrize("duration", [5, 10, "5", "10"])
def test_allowed_durations(team, duration):
    assert parse_generate_request(body(duration=duration), team=team).echo()["options"]["duration"] == int(duration)


def test_prompt_object_with_text_is_accepted(team):
    assert parse_generate_request(body(prompt={"text": "zoom out"}), team=team).echo()["options"]["prompt"] == {
        "text": "zoom out"
    }


def test_exact_mp4_output_is_accepted(team):
    payload = {**body(), "output": "storage://mine/a/b/video.mp4"}
    assert parse_generate_request(payload, team=team).output == "storage://mine/a/b/video.mp4"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"prompt": "ab"}, "options.prompt"),
        ({"prompt": "   "}, "options.prompt"),
        ({"prompt": "x" * 5001}, "options.prompt"),
        ({"prompt": 42}, "options.prompt"),
        ({"prompt": None}, "options.prompt"),
        ({"prompt": {}}, "options.prompt"),
        ({"prompt": {"generate": False}}, "options.prompt.generate"),
        ({"prompt": {"generate": 1}}, "options.prompt.generate"),
        ({"prompt": {"text": "zoom in", "generate": True}}, "options.prompt"),
        ({"prompt": {"text": "zoom in", "guidelines": "soft light"}}, "options.prompt.guidelines"),
        ({"prompt": {"generate": True, "guidelines": "ab"}}, "options.prompt.guidelines"),
        ({"prompt": {"generate": True, "guidelines": "x" * 1001}}, "options.prompt.guidelines"),
        ({"prompt": {"text": "ab"}}, "options.prompt.text"),
        ({"prompt": {"text": "zoom in", "style": "x"}}, "options.prompt.style"),
        ({"negative_prompt": "ab"}, "options.negative_prompt"),
        ({"negative_prompt": "x" * 5001}, "options.negative_prompt"),
        ({"duration": 7}, "options.duration"),
        ({"duration": "6"}, "options.duration"),
        ({"duration": 0}, "options.duration"),
        ({"duration": 5.0}, "options.duration"),
        ({"duration": True}, "options.duration"),
        ({"duration": " 5"}, "options.duration"),
        ({"guidance_scale": -0.1}, "options.guidance_scale"),
        ({"guidance_scale": 1.5}, "options.guidance_scale"),
        ({"guidance_scale": True}, "options.guidance_scale"),
        ({"guidance_scale": "0.5"}, "options.guidance_scale"),
        ({"guidance_scale": float("nan")}, "options.guidance_scale"),
        ({"guidance_scale": float("inf")}, "options.guidance_scale"),
        ({"guidance_scale": 10**5000}, "options.guidance_scale"),
        ({"seed": 1}, "options.seed"),
        ({"prompt": "zoom \x00 in"}, "options.prompt"),
        ({"prompt": "zoom \ud800 in"}, "options.prompt"),
    ],
)
def test_bad_options_name_the_field(team, options, field):
    assert field in refused(body(**options), team)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "https://shop.example/" + "a" * 492,  # 513 characters
        "ftp://shop.example/shoe.jpg",
        "file:///etc/passwd",
        "data:image/png;base64,iVBORw0KGgo=",
        "gopher://shop.example/1",
        "https://user:pw@shop.example/shoe.jpg",
        "https://user@shop.example/shoe.jpg",
        "https://shop.example:8443/shoe.jpg",
        "https://shop.example/sh oe.jpg",
        "shop.example/shoe.jpg",
        "https://127.0.0.1/a.jpg",
        "https://127.1/a.jpg",
        "https://2130706433/a.jpg",
        "https://0x7f.1/a.jpg",
        "https://017700000001/a.jpg",
        "https://0.0.0.0/a.jpg",
        "https://[::1]/a.jpg",
        "https://[::ffff:127.0.0.1]/a.jpg",
        "https://10.0.0.1/a.jpg",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/a.jpg",
        "storage://other/shoe.jpg",
        "storage://mine/../shoe.jpg",
        "storage://mine//etc/passwd",
        "storage://mine/a/%2e%2e/b.jpg",
        "storage://mine/a//b.jpg",
        "storage://mine/a\\b.jpg",
        "storage://mine/photos/",
        "storage://mine/",
        "storage://bad name/x.jpg",
        7,
        ["https://shop.example/shoe.jpg"],
    ],
)
def test_bad_inputs_are_refused_on_input(team, value):
    details = refused({"input": value, "options": {"prompt": "slow zoom in"}}, team)
    assert set(details) == {"input"}


def test_input_of_exactly_512_characters_is_accepted(team):
    value = "https://shop.example/" + "a" * 491
    assert len(value) == 512
    assert parse_generate_request({"input": value, "options": {"prompt": "zoom in"}}, team=team).input == value


def test_host_names_are_left_to_the_worker(team):
    # Host names (localhost, metadata) are resolved and refused in the worker, not at submit.
    request = parse_generate_request({"input": "http://localhost/a.jpg", "options": {"prompt": "zoom in"}}, team=team)
    assert request.input == "http://localhost/a.jpg"


def test_allow_listed_host_skips_port_and_address_checks(team, settings):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = ["127.0.0.1:8765"]
    url = "http://127.0.0.1:8765/a.jpg"
    assert parse_generate_request({"input": url, "options": {"prompt": "zoom in"}}, team=team).input == url
    assert "input" in refused({"input": "http://127.0.0.1:8766/a.jpg", "options": {"prompt": "zoom in"}}, team)


@pytest.mark.parametrize(
    "value",
    [
        "storage://other/videos/",
        "storage://mine/videos",
        "storage://mine/video.mov",
        "storage://mine/../videos/",
        "storage://mine//abs/",
        "storage://mine/%2e%2e/videos/",
        "storage://mine/a//b/",
        "https://shop.example/out/",
        "",
        5,
    ],
)
def test_bad_outputs_are_refused_on_output(team, value):
    details = refused({"input": URL, "output": value, "options": {"prompt": "slow zoom in"}}, team)
    assert set(details) == {"output"}


def test_another_teams_storage_name_is_unknown(team):
    other = make_team(credits=0)
    Storage.objects.create(team=other, name="theirs", type="local", parameters={"path": ""})
    details = refused({"input": "storage://theirs/a.jpg", "options": {"prompt": "zoom in"}}, team)
    assert details["input"] == ["no storage named 'theirs' in this team"]


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"options": {"prompt": "zoom in"}}, {"input"}),
        ({"input": URL}, {"options"}),
        ({"input": URL, "options": "zoom in"}, {"options"}),
        ({"input": URL, "options": {"prompt": "zoom in"}, "webhook": "x"}, {"webhook"}),
        ({}, {"input", "options"}),
        ([], {"body"}),
    ],
)
def test_structure_faults_name_the_field(team, payload, fields):
    assert set(refused(payload, team)) == fields


def test_every_fault_is_reported_at_once(team):
    payload = {
        "input": "ftp://x/y.jpg",
        "extra": 1,
        "options": {"prompt": "ab", "duration": 7, "guidance_scale": 2, "negative_prompt": "x", "foo": None},
    }
    assert set(refused(payload, team)) == {
        "input",
        "extra",
        "options.prompt",
        "options.duration",
        "options.guidance_scale",
        "options.negative_prompt",
        "options.foo",
    }


def test_nulls_for_optional_fields_mean_absent(team):
    payload = {
        "input": URL,
        "output": None,
        "options": {"prompt": "zoom in", "duration": None, "guidance_scale": None, "negative_prompt": None},
    }
    assert parse_generate_request(payload, team=team).echo() == {
        "input": URL,
        "options": {"prompt": "zoom in", "duration": 5, "guidance_scale": 0.5},
    }
