"""A Claid-style client session end to end: submit over HTTP, the worker's body runs, poll, download.

Each answer is validated against the served OpenAPI document, and each video is decoded.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import av
import pytest
from jsonschema import Draft202012Validator
from PIL import Image

from generator.models import Generation, Storage
from generator.services.worker import generation_run
from tests.factories import CHELSEA_INPUT, make_api_key, make_team
from tests.loopback import Route

FIXTURES = Path(__file__).parent / "fixtures"
OPTIONS = {"prompt": "slow zoom in", "duration": "5"}


def conforms(document: dict, name: str, instance: dict) -> None:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(instance)


def decode(data: bytes) -> dict:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return {
            "frames": sum(1 for _ in container.decode(stream)),
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "size": (stream.codec_context.width, stream.codec_context.height),
        }


@pytest.fixture
def session(client, db):
    team = make_team(credits=100)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {make_api_key(team)}"}
    document = client.get("/v1/openapi.json").json()

    def call(method: str, path: str, body: dict | None = None):
        data = json.dumps(body) if body is not None else ""
        return client.generic(method, path, data, content_type="application/json", **headers)

    return team, call, document


def download(client, url: str, **headers) -> tuple[int, bytes, dict]:
    response = client.get(urlsplit(url).path, **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body, response


@pytest.mark.slow
def test_url_input_to_temporary_store_is_done_with_a_playable_link(client, session, loopback):
    team, call, document = session
    loopback.routes["/cat.png"] = Route(
        body=(FIXTURES / "chelsea.png").read_bytes(), headers={"Content-Type": "image/png"}
    )
    accepted = call("POST", "/v1/video/generate", {"input": loopback.url("/cat.png"), "options": OPTIONS})
    assert accepted.status_code == 200, accepted.content
    conforms(document, "GenerationAccepted", accepted.json()["data"])
    generation_id = accepted.json()["data"]["id"]

    generation_run(generation_id)

    data = call("GET", urlsplit(accepted.json()["data"]["result_url"]).path).json()["data"]
    conforms(document, "Generation", data)
    assert data["status"] == "DONE", data["errors"]
    assert data["result"]["input_object"] == CHELSEA_INPUT
    output = data["result"]["output_object"]
    assert set(output) == {"ext", "mime", "format", "tmp_url"}
    status, video, response = download(client, output["tmp_url"])
    assert (status, response["Content-Type"]) == (200, "video/mp4")
    assert decode(video) == {"frames": 150, "codec": "h264", "pix_fmt": "yuv420p", "size": (902, 600)}
    status, part, response = download(client, output["tmp_url"], HTTP_RANGE="bytes=0-99")
    assert (status, len(part), part) == (206, 100, video[:100])
    team.refresh_from_db()
    assert team.balance == 65
    listed = call("GET", "/v1/video/generate?status=DONE").json()
    conforms(document, "GenerationList", listed)
    assert [g["id"] for g in listed["data"]] == [generation_id]


@pytest.mark.slow
def test_storage_input_and_folder_output_report_the_object(client, session, settings):
    team, call, document = session
    Storage.objects.create(team=team, name="shop", type="local", parameters={"path": "shop"})
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "shop" / "in"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "chelsea.png", folder / "cat.png")
    body = {"input": "storage://shop/in/cat.png", "output": "storage://shop/out/", "options": OPTIONS}
    accepted = call("POST", "/v1/video/generate", body).json()["data"]
    assert accepted["request"] == {
        "input": "storage://shop/in/cat.png",
        "output": "storage://shop/out/",
        "options": {"prompt": "slow zoom in", "duration": 5, "guidance_scale": 0.5},
    }

    generation_run(accepted["id"])

    data = call("GET", f"/v1/video/generate/{accepted['id']}").json()["data"]
    conforms(document, "Generation", data)
    assert data["status"] == "DONE", data["errors"]
    output = data["result"]["output_object"]
    key = output["claid_storage_uri"].removeprefix("storage://shop/")
    assert key.startswith("out/")
    assert key.endswith(".mp4")
    assert output["object_key"] == f"shop/{key}"
    written = (settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "shop" / key).read_bytes()
    status, video, _ = download(client, output["tmp_url"])
    assert status == 200
    assert video == written
    assert decode(video)["frames"] == 150


@pytest.mark.slow
@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Route(status=404, body=b"gone"), "404"),
        (Route(body=b"<html>not an image</html>", headers={"Content-Type": "image/jpeg"}), "image"),
        ("small", "300"),
    ],
)
def test_input_that_fails_in_the_worker_ends_error_with_refund(client, session, loopback, route, reason):
    team, call, document = session
    if route == "small":
        small = io.BytesIO()
        Image.open(FIXTURES / "chelsea.png").convert("RGB").resize((299, 200)).save(small, format="JPEG")
        route = Route(body=small.getvalue(), headers={"Content-Type": "image/jpeg"})
    loopback.routes["/photo.jpg"] = route
    accepted = call("POST", "/v1/video/generate", {"input": loopback.url("/photo.jpg"), "options": OPTIONS})
    assert accepted.status_code == 200
    generation_run(accepted.json()["data"]["id"])
    data = call("GET", f"/v1/video/generate/{accepted.json()['data']['id']}").json()["data"]
    conforms(document, "Generation", data)
    assert data["status"] == "ERROR"
    assert data["result"] == {}
    assert len(data["errors"]) == 1
    assert reason in data["errors"][0]["error"].lower()
    team.refresh_from_db()
    assert team.balance == 100
    assert Generation.objects.get().cost == 35
