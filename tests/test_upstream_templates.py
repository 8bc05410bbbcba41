"""Input templates (generator/upstream/templates.py): typed placeholders, dropped absent values, problems named."""

import json

import pytest

from generator.upstream.templates import (
    ModelTemplate,
    inputs_problems,
    job_values,
    render_inputs,
    shapes_of,
    template_for,
    template_problems,
)
from tests.harness import bearer

TEMPLATE = {
    "image_url": "{image_url}",
    "prompt": "{prompt}",
    "negative_prompt": "{negative_prompt}",
    "duration": "{duration}",
    "aspect_ratio": "{aspect_ratio}",
    "caption": "a {duration} s clip",
    "extras": [{"cfg": "{guidance_scale}"}, "{negative_prompt}"],
    "fixed": 3,
}


def test_a_whole_placeholder_keeps_the_values_type_and_an_absent_one_drops_its_key():
    values = job_values(
        image_url="https://x.test/a.jpg", options={"duration": "10", "prompt": "turn", "guidance_scale": 0.5}
    )
    assert render_inputs(TEMPLATE, values) == {
        "image_url": "https://x.test/a.jpg",
        "prompt": "turn",
        "duration": 10,
        "caption": "a 10 s clip",
        "extras": [{"cfg": 0.5}],
        "fixed": 3,
    }


def test_the_photos_own_shape_is_no_aspect_ratio_and_a_given_one_is_passed():
    assert "aspect_ratio" not in job_values(image_url="u", options={"aspect_ratio": "source"})
    assert job_values(image_url="u", options={"aspect_ratio": "9:16"})["aspect_ratio"] == "9:16"


def test_problems_name_unknown_placeholders_and_a_missing_image():
    assert template_problems(TEMPLATE) == []
    assert template_problems({"prompt": "{promt}"}) == [
        "unknown placeholder {promt}",
        "the template must place {image_url}",
    ]


# --- the rule every templated provider's connection passes (services/engine_connections.py) ---------

SHIPPED = {
    "acme/i2v": ModelTemplate(
        title="Acme i2v", inputs={"image_url": "{image_url}"}, durations=(5,), aspect_ratios=("16:9", "9:16")
    )
}


def test_a_connection_names_a_shipped_model_or_gives_valid_inputs_of_its_own():
    assert inputs_problems(model="acme/i2v", inputs=None, shipped=SHIPPED) == []
    assert inputs_problems(model="other/model", inputs={"image": "{image_url}"}, shipped=SHIPPED) == []
    missing = inputs_problems(model="other/model", inputs=None, shipped=SHIPPED)
    assert missing == ["no template ships for the model 'other/model': give parameters.inputs (shipped: acme/i2v)"]
    assert inputs_problems(model="acme/i2v", inputs={"prompt": "{promt}"}, shipped=SHIPPED) == [
        "unknown placeholder {promt}",
        "the template must place {image_url}",
    ]


def test_own_inputs_keep_a_shipped_models_durations_and_an_unknown_model_takes_shapes_only_if_placed():
    own = template_for(model="acme/i2v", inputs={"img": "{image_url}"}, shipped=SHIPPED)
    assert (own.inputs, own.durations, shapes_of(own)) == ({"img": "{image_url}"}, (5,), ("source", "16:9", "9:16"))
    plain = template_for(model="x/y", inputs={"img": "{image_url}"}, shipped=SHIPPED)
    assert (plain.durations, shapes_of(plain)) == ((5, 10), ("source",))
    shaped = template_for(model="x/y", inputs={"img": "{image_url}", "ar": "{aspect_ratio}"}, shipped=SHIPPED)
    assert shapes_of(shaped) == ("source", "16:9", "9:16", "1:1", "4:5")


class _TemplatedProvider:
    """A provider that ships SHIPPED and accepts every key (the check under test runs before its test call)."""

    templates = SHIPPED

    def test(self, connection) -> None:
        pass

    def capabilities(self, connection):
        from generator.upstream.base import Capabilities

        return Capabilities()


@pytest.fixture
def templated(monkeypatch):
    from generator.upstream import registry

    monkeypatch.setitem(registry._PROVIDERS, "fal", "tests.test_upstream_templates._TemplatedProvider")


def _connect(client, key, parameters):
    body = {"name": "t", "type": "fal", "credentials": {"api_key": "k-123"}, "parameters": parameters}
    return client.post("/v1/engines", json.dumps(body), content_type="application/json", **bearer(key))


def test_connecting_an_unshipped_model_without_inputs_or_with_bad_inputs_is_a_422_naming_parameters_inputs(
    client, key, templated
):
    from generator.models import EngineConnection

    for parameters in ({"model": "other/model"}, {"model": "acme/i2v", "inputs": {"prompt": "{prompt}"}}):
        answer = _connect(client, key, parameters)
        assert answer.status_code == 422, answer.content
        assert list(answer.json()["error_details"]) == ["parameters.inputs"]
    assert list(_connect(client, key, {}).json()["error_details"]) == ["parameters.model"]
    assert not EngineConnection.objects.exists()
    assert _connect(client, key, {"model": "acme/i2v"}).status_code == 201
    pk = EngineConnection.objects.get().pk
    patched = client.patch(
        f"/v1/engines/{pk}",
        json.dumps({"parameters": {"model": "other/model"}}),
        content_type="application/json",
        **bearer(key),
    )
    assert list(patched.json()["error_details"]) == ["parameters.inputs"]
    assert EngineConnection.objects.get().parameters == {"model": "acme/i2v"}


def test_the_text_form_sends_a_value_as_a_string_and_a_prompt_object_gives_its_text():
    values = job_values(image_url="u", options={"duration": 10, "prompt": {"text": "a slow turn"}})
    assert render_inputs({"d": "{duration:text}", "p": "{prompt}", "n": "{negative_prompt:text}"}, values) == {
        "d": "10",
        "p": "a slow turn",
    }
    assert "prompt" not in job_values(image_url="u", options={"prompt": {"generate": True}})
    assert template_problems({"i": "{image_url}", "d": "{duration:int}"}) == [
        "unknown form {duration:int} (only :text is known)"
    ]


def test_a_template_adds_its_per_duration_inputs_and_own_inputs_for_its_model_keep_them():
    from generator.upstream.templates import render_template

    frames = ModelTemplate(
        title="t", inputs={"img": "{image_url}"}, durations=(5, 10), by_duration={5: {"n": 81}, 10: {"n": 161}}
    )
    assert render_template(frames, job_values(image_url="u", options={"duration": 10})) == {"img": "u", "n": 161}
    own = template_for(model="m", inputs={"image": "{image_url}"}, shipped={"m": frames})
    assert render_template(own, job_values(image_url="u", options={})) == {"image": "u", "n": 81}
