"""End to end: a job reads its photo from a bucket and writes a real 5 s MP4 back (moto, GCS emulator)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from PIL import Image

from generator.contract.generate import GenerateRequest
from generator.services.generations import generation_create
from generator.services.storage_connections import storage_create
from generator.services.worker import generation_run
from tests.factories import make_team

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _small_png() -> bytes:
    with Image.open(FIXTURES / "chelsea.png") as img:
        out = io.BytesIO()
        img.convert("RGB").resize((320, 320)).save(out, format="PNG")
        return out.getvalue()


def _probe(data: bytes, tmp_path: Path) -> tuple[int, str, tuple[int, int]]:
    path = tmp_path / "downloaded.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.codec_context.name, (stream.codec_context.width, stream.codec_context.height)


def _run(team, *, input: str, output: str):
    request = GenerateRequest(
        input=input, output=output, options={"prompt": "slow zoom in", "duration": 5, "guidance_scale": 0.5}
    )
    generation = generation_create(team=team, request=request).generation
    generation_run(generation.pk)
    generation.refresh_from_db()
    assert generation.status == "DONE", generation.errors
    return generation


def test_s3_job_reads_the_bucket_and_writes_a_decodable_mp4_into_a_folder(settings, tmp_path, s3_server, s3_bucket):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [s3_server.host_port]
    admin = s3_server.client()
    admin.put_object(Bucket=s3_bucket, Key="shop/in/cat.png", Body=_small_png())
    team = make_team(credits=100)
    params = {
        "bucket": s3_bucket,
        "path": "shop",
        "endpoint_url": s3_server.endpoint_url,
        "credentials": {"access_key": s3_server.access_key, "secret_access_key": s3_server.secret_key},
    }
    storage_create(team=team, user=None, name="my-s3", type="s3", parameters=params)
    generation = _run(team, input="storage://my-s3/in/cat.png", output="storage://my-s3/out/")
    output = generation.output_object
    assert output["object_bucket"] == s3_bucket
    assert output["object_key"].startswith("shop/out/")
    assert output["object_key"].endswith(".mp4")
    assert output["object_uri"] == f"s3://{s3_bucket}/{output['object_key']}"
    assert output["claid_storage_uri"] == "storage://my-s3/" + output["object_key"].removeprefix("shop/")
    assert s3_server.keys(s3_bucket) == sorted(["shop/in/cat.png", output["object_key"]])
    data = admin.get_object(Bucket=s3_bucket, Key=output["object_key"])["Body"].read()
    assert _probe(data, tmp_path) == (150, "h264", (640, 640))


def test_gcs_job_writes_a_decodable_mp4_to_an_exact_key(settings, tmp_path, gcs_server, gcs_bucket):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [gcs_server.host_port]
    bucket = gcs_server.client().bucket(gcs_bucket)
    bucket.blob("in/cat.png").upload_from_string(_small_png(), content_type="image/png")
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    info = {
        "type": "service_account",
        "project_id": "demo",
        "private_key": pem,
        "client_email": "svc@demo.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    team = make_team(credits=100)
    params = {"bucket": gcs_bucket, "endpoint_url": gcs_server.endpoint_url, "credentials": {"service_account": info}}
    storage_create(team=team, user=None, name="my-gcs", type="gcs", parameters=params)
    generation = _run(team, input="storage://my-gcs/in/cat.png", output="storage://my-gcs/videos/cat.mp4")
    assert generation.output_object["object_uri"] == f"gs://{gcs_bucket}/videos/cat.mp4"
    assert gcs_server.keys(gcs_bucket) == ["in/cat.png", "videos/cat.mp4"]
    assert bucket.get_blob("videos/cat.mp4").content_type == "video/mp4"
    assert _probe(bucket.blob("videos/cat.mp4").download_as_bytes(), tmp_path) == (150, "h264", (640, 640))
