"""An SDK generated from the served /v1/openapi.json drives a whole job against a live server on loopback.

openapi-python-client reads the document from the running server (no warnings allowed), the
generated package is imported, and its typed calls connect a local storage, submit a photo from
it, poll the job until DONE (the worker's body runs in between, as a worker would), download the
video and read the account. Every answer is parsed into the generated models, so a response that
strays from the document fails here.
"""

from __future__ import annotations

import importlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import httpx
import pytest

from generator.services.worker import generation_run
from tests.factories import make_api_key, make_team

FIXTURES = Path(__file__).parent / "fixtures"
PACKAGE = "i2v_client"


def generate_client(document_url: str, into: Path) -> str:
    """Run the generator on the served document; return everything it printed."""
    venv_bin = str(Path(sys.executable).parent)
    # The generator reads JSON, text and octet-stream bodies; a ZIP download is bytes to it too.
    config = into / "config.yml"
    config.write_text("content_type_overrides:\n  application/zip: application/octet-stream\n")
    result = subprocess.run(
        [
            os.path.join(venv_bin, "openapi-python-client"),
            "generate",
            "--url",
            document_url,
            "--output-path",
            str(into / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # ruff (a dev requirement) formats the generated code, as the generator's post-hooks expect.
        env={**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.fixture
def sdk(live_server, tmp_path, monkeypatch):
    output = generate_client(f"{live_server.url}/v1/openapi.json", tmp_path)
    printed = [line for line in output.splitlines() if line.strip()]
    assert printed == [f"Generating {tmp_path / PACKAGE}"], output
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(PACKAGE)
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def test_generated_client_connects_a_storage_makes_a_video_and_reads_the_account(
    sdk, live_server, transactional_db, settings
):
    models = importlib.import_module(f"{PACKAGE}.models")
    create_storage = importlib.import_module(f"{PACKAGE}.api.storage.create_storage")
    list_storage_types = importlib.import_module(f"{PACKAGE}.api.storage.list_storage_types")
    generate_video = importlib.import_module(f"{PACKAGE}.api.video.generate_video")
    get_generation = importlib.import_module(f"{PACKAGE}.api.video.get_generation")
    list_generations = importlib.import_module(f"{PACKAGE}.api.video.list_generations")
    get_account = importlib.import_module(f"{PACKAGE}.api.account.get_account")

    settings.GENERATOR_PUBLIC_URL = live_server.url
    team = make_team(credits=100)
    client = sdk.AuthenticatedClient(
        base_url=live_server.url,
        token=make_api_key(team, scopes=["video_generation", "storage"]),
        timeout=httpx.Timeout(30.0),
        raise_on_unexpected_status=True,
    )

    types = list_storage_types.sync(client=client)
    assert isinstance(types, models.StorageTypesResponse)
    assert "local" in [str(t) for t in types.data]

    storage = create_storage.sync(
        client=client,
        body=models.StorageCreate(
            name="photos",
            type_=models.StorageCreateType.LOCAL,
            parameters=models.LocalParameters(path="/shop/"),
        ),
    )
    assert isinstance(storage, models.StorageResponse), storage
    assert (storage.data.name, str(storage.data.type_), storage.data.parameters.path) == ("photos", "local", "shop")
    # The connection check made the folder; put a photo in it.
    shutil.copy(FIXTURES / "chelsea.png", settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "shop" / "cat.png")

    accepted = generate_video.sync(
        client=client,
        body=models.GenerateRequest(
            input_="storage://photos/cat.png",
            output="storage://photos/videos/",
            options=models.GenerateOptions(
                prompt=models.PromptText(text="slow zoom in, light sweep"),
                duration=models.GenerateOptionsDurationType1("5"),
            ),
        ),
        idempotency_key="sdk-1",
    )
    assert isinstance(accepted, models.GenerationAcceptedResponse), accepted
    job = accepted.data
    assert str(job.status) == "PROCESSING"
    assert job.request.options.duration == 5  # echoed as a number
    assert job.result_url == f"{live_server.url}/v1/video/generate/{job.id}"

    first = get_generation.sync(job.id, client=client)
    assert isinstance(first, models.GenerationResponse)
    assert str(first.data.status) == "PROCESSING"

    generation_run(job.id)  # what a worker does with the queued task

    polled = get_generation.sync(job.id, client=client)
    assert isinstance(polled, models.GenerationResponse)
    done = polled.data
    assert str(done.status) == "DONE", done.errors
    assert (done.result.input_object.width, done.result.input_object.height) == (451, 300)
    output = done.result.output_object
    assert output.claid_storage_uri == f"storage://photos/videos/{output.object_key.rsplit('/', 1)[-1]}"
    video = httpx.get(output.tmp_url, timeout=30).content
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        assert sum(1 for _ in container.decode(stream)) == 150

    page = list_generations.sync(client=client, status=models.ListGenerationsStatus.DONE)
    assert isinstance(page, models.GenerationList)
    assert [g.id for g in page.data] == [job.id]
    assert page.next_cursor is None

    account = get_account.sync(client=client)
    assert isinstance(account, models.AccountResponse)
    assert account.data.balance == 65
    # The generator adds "_" to names Python already has (credits, type, input).
    assert (account.data.usage_this_month.credits_, account.data.usage_this_month.generations) == (35, 1)
