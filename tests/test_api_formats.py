"""The format options over HTTP (docs/formats.md): validation, the grouped echo, the recorded shape, the price."""

from __future__ import annotations

import json

import pytest

from generator.contract.generate import SHAPES, GenerateRequest, OutputFormat
from generator.models import CreditLedger, Generation
from generator.services.generations import generation_retry
from tests.factories import make_api_key
from tests.test_api import URL, Api, assert_envelope, balance

OLD_ECHO = f'{{"input": "{URL}", "options": {{"prompt": "slow zoom in", "duration": 5, "guidance_scale": 0.5}}}}'
DEFAULTS = {"aspect_ratio": "source", "resolution": "1080p", "loop": False, "background": "auto"}


@pytest.fixture
def api(client, unlimited, member):
    return Api(client, make_api_key(unlimited, user=member.user))


def submit(api, **options):
    return api.post("/v1/video/generate", {"input": URL, "options": {"prompt": "slow zoom in", **options}})


# --- validation ------------------------------------------------------------------------------

BAD_FORMATS = [
    ({"aspect_ratio": "9x16"}, "options.aspect_ratio", "must be one of: source, 16:9, 9:16, 1:1, 4:5"),
    ({"aspect_ratio": "16/9"}, "options.aspect_ratio", "must be one of: source, 16:9, 9:16, 1:1, 4:5"),
    ({"aspect_ratio": "SOURCE"}, "options.aspect_ratio", "must be one of: source, 16:9, 9:16, 1:1, 4:5"),
    ({"aspect_ratio": ""}, "options.aspect_ratio", "must be one of: source, 16:9, 9:16, 1:1, 4:5"),
    ({"aspect_ratio": 1.7778}, "options.aspect_ratio", "must be a string, not a number"),
    ({"aspect_ratio": ["9:16"]}, "options.aspect_ratio", "must be a string, not an array"),
    ({"resolution": "1080"}, "options.resolution", "must be one of: 1080p, 720p"),
    ({"resolution": "4k"}, "options.resolution", "must be one of: 1080p, 720p"),
    ({"resolution": 720}, "options.resolution", "must be a string, not a number"),
    ({"loop": "true"}, "options.loop", "must be true or false, not a string"),
    ({"loop": 1}, "options.loop", "must be true or false, not a number"),
    ({"loop": {}}, "options.loop", "must be true or false, not an object"),
    ({"background": "red"}, "options.background", "must be one of: auto, blur, extend, or a colour #RRGGBB"),
    ({"background": "#fff"}, "options.background", "must be one of: auto, blur, extend, or a colour #RRGGBB"),
    ({"background": "#12345G"}, "options.background", "must be one of: auto, blur, extend, or a colour #RRGGBB"),
    ({"background": "#1234567"}, "options.background", "must be one of: auto, blur, extend, or a colour #RRGGBB"),
    ({"background": "BLUR"}, "options.background", "must be one of: auto, blur, extend, or a colour #RRGGBB"),
    ({"background": " blur"}, "options.background", "must be one of: auto, blur, extend, or a colour #RRGGBB"),
    ({"background": 0xFFFFFF}, "options.background", "must be a string, not a number"),
    ({"background": True}, "options.background", "must be a string, not a boolean"),
]


@pytest.mark.parametrize(("options", "field", "message"), BAD_FORMATS)
def test_a_bad_format_value_is_422_naming_the_field_and_charges_nothing(api, team, options, field, message):
    before = balance(team)
    response = submit(api, **options)
    body = assert_envelope(response, 422, "9000", field=field)
    assert body["error_type"] == "validation"
    assert body["error_details"] == {field: [message]}
    assert body["error_message"] == f"{field}: {message}"
    assert Generation.objects.count() == 0
    assert balance(team) == before
    assert not CreditLedger.objects.filter(team=team, kind="hold").exists()


def test_every_bad_format_field_is_named_at_once(api):
    response = submit(api, aspect_ratio="2:1", resolution="8k", loop="yes", background="pink")
    details = assert_envelope(response, 422, "9000")["error_details"]
    assert list(details) == ["options.aspect_ratio", "options.resolution", "options.loop", "options.background"]


# --- the echo --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"aspect_ratio": None},
        {"aspect_ratio": None, "resolution": None, "loop": None, "background": None},
    ],
)
def test_a_request_without_format_options_is_echoed_byte_for_byte_as_before(api, options):
    accepted = submit(api, **options).json()["data"]
    assert json.dumps(accepted["request"]) == OLD_ECHO
    detail = api.get(f"/v1/video/generate/{accepted['id']}").json()["data"]
    assert json.dumps(detail["request"]) == OLD_ECHO
    listed = api.get("/v1/video/generate").json()["data"][0]
    assert json.dumps(listed["request"]) == OLD_ECHO
    assert Generation.objects.get().aspect_ratio == "source"


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ({"aspect_ratio": "9:16"}, {**DEFAULTS, "aspect_ratio": "9:16"}),
        ({"resolution": "720p"}, {**DEFAULTS, "resolution": "720p"}),
        ({"loop": True}, {**DEFAULTS, "loop": True}),
        ({"loop": False}, DEFAULTS),
        ({"background": "#1a2b3c"}, {**DEFAULTS, "background": "#1A2B3C"}),
        ({"aspect_ratio": "source"}, DEFAULTS),
        (
            {"aspect_ratio": "4:5", "resolution": "720p", "loop": True, "background": "blur"},
            {"aspect_ratio": "4:5", "resolution": "720p", "loop": True, "background": "blur"},
        ),
        ({"aspect_ratio": "1:1", "background": None}, {**DEFAULTS, "aspect_ratio": "1:1"}),
    ],
)
def test_format_options_are_echoed_as_a_group_with_defaults_once_one_is_sent(api, sent, echoed):
    accepted = submit(api, **sent).json()["data"]
    expected = {"prompt": "slow zoom in", "duration": 5, "guidance_scale": 0.5, **echoed}
    assert accepted["request"]["options"] == expected
    assert api.get(f"/v1/video/generate/{accepted['id']}").json()["data"]["request"]["options"] == expected


@pytest.mark.parametrize("shape", ["source", "16:9", "9:16", "1:1", "4:5"])
def test_every_shape_is_accepted_and_recorded_on_the_generation(api, shape):
    response = submit(api, aspect_ratio=shape)
    assert response.status_code == 200, response.content
    generation = Generation.objects.get()
    assert generation.aspect_ratio == shape
    assert generation.request["options"]["aspect_ratio"] == shape


def test_the_echo_parses_back_to_the_same_format(api):
    accepted = submit(api, aspect_ratio="9:16", loop=True).json()["data"]
    request = GenerateRequest.parse(accepted["request"])
    assert request.echo() == accepted["request"]
    assert (request.output_format.aspect_ratio, request.output_format.loop) == ("9:16", True)
    old = GenerateRequest.parse(json.loads(OLD_ECHO))
    assert old.echo() == json.loads(OLD_ECHO)
    assert old.output_format == OutputFormat(aspect_ratio="source", resolution="1080p", loop=False, background="auto")


def test_a_retry_makes_the_same_format(api, team, member):
    submit(api, aspect_ratio="1:1", resolution="720p")
    first = Generation.objects.get()
    again = generation_retry(team=team, user=member.user, generation=first).generation
    assert again.request == first.request
    assert again.aspect_ratio == "1:1"


# --- the price -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"aspect_ratio": "9:16"},
        {"aspect_ratio": "16:9", "resolution": "720p"},
        {"loop": True, "background": "#000000"},
        {"aspect_ratio": "4:5", "resolution": "1080p", "loop": True, "background": "extend"},
    ],
)
@pytest.mark.parametrize(("duration", "price"), [(5, 35), (10, 70)])
def test_format_options_do_not_change_the_price(api, team, options, duration, price):
    before = balance(team)
    response = submit(api, duration=duration, **options)
    assert response.status_code == 200, response.content
    generation = Generation.objects.get()
    assert generation.cost == price
    assert balance(team) == before - price
    assert CreditLedger.objects.get(generation=generation, kind="hold").amount == -price


def test_idempotent_replay_of_a_format_request_answers_the_first_echo(api, team):
    first = submit(api, aspect_ratio="9:16")
    body = {"input": URL, "options": {"prompt": "slow zoom in", "aspect_ratio": "9:16"}}
    replay = api.post("/v1/video/generate", body, **{"Idempotency-Key": "k1"})
    again = api.post("/v1/video/generate", body, **{"Idempotency-Key": "k1"})
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == replay.json()
    assert Generation.objects.count() == 2  # the first submit had no key
    assert first.json()["data"]["request"] == replay.json()["data"]["request"]


# --- the document and the model --------------------------------------------------------------


def test_the_openapi_document_describes_the_format_options(client):
    schemas = client.get("/v1/openapi.json").json()["components"]["schemas"]
    options = schemas["GenerateOptions"]["properties"]
    assert options["aspect_ratio"]["enum"] == ["source", "16:9", "9:16", "1:1", "4:5"]
    assert options["resolution"]["enum"] == ["1080p", "720p"]
    assert options["loop"]["type"] == "boolean"
    assert options["background"]["anyOf"] == [
        {"type": "string", "enum": ["auto", "blur", "extend"]},
        {"type": "string", "pattern": "^#[0-9A-Fa-f]{6}$"},
    ]
    assert {name: options[name]["default"] for name in DEFAULTS} == DEFAULTS
    assert not set(DEFAULTS) & set(schemas["GenerateOptions"].get("required", []))


def test_the_recorded_shapes_are_the_engines():
    assert list(Generation.AspectRatio.values) == list(SHAPES) == ["source", "16:9", "9:16", "1:1", "4:5"]
