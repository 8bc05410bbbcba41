"""Input templates (generator/upstream/templates.py): typed placeholders, dropped absent values, problems named."""

from generator.upstream.templates import job_values, render_inputs, template_problems

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
