"""The S3 temporary store and the /v/ links that redirect to short presigned URLs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from config.settings import temp_s3_storage
from generator.models import Generation
from generator.services.links import link_url
from generator.services.storage_connections import storage_create
from generator.storage.registry import get_connector
from generator.storage.temp import temp_download_url, temp_is_remote
from tests.factories import make_team

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.django_db


@pytest.fixture
def s3_temp_store(settings, s3_server, s3_bucket):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": temp_s3_storage(
            bucket=s3_bucket,
            endpoint_url=s3_server.endpoint_url,
            region="us-east-1",
            access_key=s3_server.access_key,
            secret_key=s3_server.secret_key,
            addressing_style="path",
        ),
    }
    return s3_bucket


def _done_generation(team, **fields) -> Generation:
    return Generation.objects.create(
        team=team,
        request={"input": "https://example.com/a.jpg", "options": {"prompt": "zoom", "duration": 5}},
        status=Generation.Status.DONE,
        stage=Generation.Stage.DONE,
        progress=100,
        completed_at=timezone.now(),
        **fields,
    )


def test_local_temp_store_has_no_presigned_url():
    assert not temp_is_remote()
    assert temp_download_url("videos/a.mp4") is None


def test_s3_temp_store_saves_to_the_bucket_and_presigns_five_minutes(s3_temp_store, s3_server):
    assert temp_is_remote()
    name = default_storage.save("videos/a.mp4", ContentFile(b"fake-mp4-bytes"))
    assert s3_server.keys(s3_temp_store) == [f"generator/{name}"]
    url = temp_download_url(name, expires_s=86_400)
    assert "X-Amz-Expires=300" in url
    with s3_server.presigned_requests_allowed():
        assert httpx.get(url, timeout=5).content == b"fake-mp4-bytes"


def test_temporary_video_link_redirects_to_a_presigned_url(client, s3_temp_store, s3_server):
    team = make_team()
    name = default_storage.save("videos/b.mp4", ContentFile(b"temporary-video"))
    generation = _done_generation(team, is_temporary=True, video_name=name)
    response = client.get(urlsplit(link_url(generation)).path)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{s3_server.endpoint_url}/{s3_temp_store}/generator/videos/")
    assert "X-Amz-Expires=300" in location
    with s3_server.presigned_requests_allowed():
        assert httpx.get(location, timeout=5).content == b"temporary-video"


def test_storage_output_link_redirects_to_a_fresh_presigned_url(client, settings, s3_server, s3_bucket):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [s3_server.host_port]
    team = make_team(slug="acme")
    params = {
        "bucket": s3_bucket,
        "path": "shop",
        "endpoint_url": s3_server.endpoint_url,
        "credentials": {"access_key": s3_server.access_key, "secret_access_key": s3_server.secret_key},
    }
    storage = storage_create(team=team, user=None, name="shop", type="s3", parameters=params)
    get_connector(storage).write_file("out/v.mp4", str(FIXTURES / "coffee.png"), content_type="video/mp4")
    generation = _done_generation(team, is_temporary=False, output_storage=storage, output_key="out/v.mp4")
    response = client.get(urlsplit(link_url(generation)).path)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{s3_server.endpoint_url}/{s3_bucket}/shop/out/v.mp4?")
    assert "X-Amz-Expires=300" in location
    assert s3_server.secret_key not in location
    with s3_server.presigned_requests_allowed():
        assert httpx.get(location, timeout=5).content == (FIXTURES / "coffee.png").read_bytes()
