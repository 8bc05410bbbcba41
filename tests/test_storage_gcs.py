"""GCS storages: the JSON API through gcp-storage-emulator, HMAC through an S3 server, key-file rules."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from generator.crypto import encrypt_json
from generator.models import Storage
from generator.services.storage_connections import storage_create
from generator.storage.base import StorageError
from generator.storage.gcs import GCSHmacConnector, GCSServiceAccountConnector
from generator.storage.registry import get_connector
from tests.harness import bearer
from tests.storage_servers import TRAVERSAL_KEYS, assert_reads_with_a_size_cap, free_closed_port

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def service_account_info() -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "uploader@demo-project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/uploader",
        "universe_domain": "googleapis.com",
    }


@pytest.fixture(autouse=True)
def _allow_emulator(settings, gcs_server):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [gcs_server.host_port]


def _connect_emulator(team, gcs_server, gcs_bucket, service_account_info):
    """Connect the emulator's bucket with a service-account key, under the prefix p/."""
    params = _emulator_params(gcs_server, gcs_bucket, service_account_info, path="p")
    return storage_create(team=team, user=None, name="g", type="gcs", parameters=params)


def _create(client, key, body):
    return client.post("/v1/storage/storages", data=json.dumps(body), content_type="application/json", **bearer(key))


def _emulator_params(server, bucket, info, **extra) -> dict:
    return {"bucket": bucket, "endpoint_url": server.endpoint_url, "credentials": {"service_account": info}, **extra}


def test_create_gcs_storage_against_the_emulator_hides_the_key_file(
    client, key, gcs_server, gcs_bucket, service_account_info
):
    params = _emulator_params(gcs_server, gcs_bucket, service_account_info, path="media/")
    response = _create(client, key, {"name": "gcs", "type": "gcs", "parameters": params})
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["parameters"] == {"bucket": gcs_bucket, "path": "media", "endpoint_url": gcs_server.endpoint_url}
    listing = client.get("/v1/storage/storages", **bearer(key)).content
    detail = client.get(f"/v1/storage/storages/{data['id']}", **bearer(key)).content
    key_line = service_account_info["private_key"].splitlines()[5]
    for body in (response.content, listing, detail):
        assert key_line.encode() not in body
        assert b"private_key" not in body
        assert service_account_info["client_email"].encode() not in body
    assert gcs_server.keys(gcs_bucket) == []  # probe written, read back and deleted


def test_emulator_storage_browses_reads_writes_and_serves_a_media_link(
    team, gcs_server, gcs_bucket, service_account_info
):
    admin = gcs_server.client().bucket(gcs_bucket)
    photo = (FIXTURES / "coffee.png").read_bytes()
    admin.blob("p/in/shoe.png").upload_from_string(photo, content_type="image/png")
    admin.blob("p/in/sub/deep.png").upload_from_string(b"x")
    admin.blob("outside.png").upload_from_string(b"not under the prefix")
    storage = _connect_emulator(team, gcs_server, gcs_bucket, service_account_info)
    connector = get_connector(storage)
    assert isinstance(connector, GCSServiceAccountConnector)
    assert [(e.name, e.key, e.is_folder) for e in connector.list("")] == [("in", "in/", True)]
    assert [(e.key, e.is_folder, e.size) for e in connector.list("in/")] == [
        ("in/sub/", True, None),
        ("in/shoe.png", False, len(photo)),
    ]
    assert_reads_with_a_size_cap(connector, "in/shoe.png", photo)
    connector.write_file("out/exact.mp4", str(FIXTURES / "chelsea.png"), content_type="video/mp4")
    connector.write_file("out/dir/unique-1.mp4", str(FIXTURES / "chelsea.png"), content_type="video/mp4")
    assert admin.get_blob("p/out/exact.mp4").content_type == "video/mp4"
    assert connector.exists("out/exact.mp4")
    assert not connector.exists("out/missing.mp4")
    assert connector.describe("out/exact.mp4") == {
        "object_key": "p/out/exact.mp4",
        "object_bucket": gcs_bucket,
        "object_uri": f"gs://{gcs_bucket}/p/out/exact.mp4",
    }
    url = connector.download_url("in/shoe.png")
    assert url.startswith(gcs_server.endpoint_url)
    fetched = httpx.get(url, timeout=5)
    assert fetched.status_code == 200
    assert fetched.content == photo
    connector.delete("out/exact.mp4")
    connector.delete("out/exact.mp4")
    assert gcs_server.keys(gcs_bucket) == [
        "outside.png",
        "p/in/shoe.png",
        "p/in/sub/deep.png",
        "p/out/dir/unique-1.mp4",
    ]


@pytest.mark.parametrize("key", TRAVERSAL_KEYS)
def test_emulator_traversal_keys_never_reach_outside_the_prefix(
    team, gcs_server, gcs_bucket, service_account_info, key
):
    admin = gcs_server.client().bucket(gcs_bucket)
    admin.blob("outside.png").upload_from_string(b"secret")
    storage = _connect_emulator(team, gcs_server, gcs_bucket, service_account_info)
    connector = get_connector(storage)
    for attempt in (
        lambda: connector.read(key, max_bytes=1000),
        lambda: connector.write_file(key, str(FIXTURES / "coffee.png"), content_type="image/png"),
        lambda: connector.delete(key),
        lambda: connector.download_url(key),
    ):
        with pytest.raises(StorageError):
            attempt()
    assert gcs_server.keys(gcs_bucket) == ["outside.png"]
    assert admin.blob("outside.png").download_as_bytes() == b"secret"


def test_unreachable_emulator_endpoint_is_a_quick_clear_422(client, key, settings, service_account_info):
    port = free_closed_port()
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{port}"]
    params = {
        "bucket": "bkt",
        "endpoint_url": f"http://127.0.0.1:{port}",
        "credentials": {"service_account": service_account_info},
    }
    started = time.monotonic()
    response = _create(client, key, {"name": "g", "type": "gcs", "parameters": params})
    elapsed = time.monotonic() - started
    assert response.status_code == 422
    assert "could not connect to the storage endpoint" in response.json()["error_message"]
    assert elapsed < 6


def test_missing_emulator_bucket_is_422(client, key, gcs_server, service_account_info):
    response = _create(
        client,
        key,
        {"name": "g", "type": "gcs", "parameters": _emulator_params(gcs_server, "nope-bucket", service_account_info)},
    )
    assert response.status_code == 422
    assert "list failed: 404" in response.json()["error_message"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "authorized_user"}, '"type": "service_account"'),
        ({"token_uri": "https://evil.example/token"}, "token_uri must be"),
        ({"token_uri": "http://oauth2.googleapis.com/token"}, "token_uri must be"),
        ({"universe_domain": "evil.example"}, "universe_domain"),
        ({"extra": "x"}, "unknown keys: extra"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"}, "cannot be read"),
        ({"client_email": ""}, "client_email is missing"),
    ],
)
def test_key_file_rules_are_enforced_at_save(client, key, service_account_info, change, message):
    info = {**service_account_info, **change}
    params = {"bucket": "some-bucket", "credentials": {"service_account": info}}
    response = _create(client, key, {"name": "g", "type": "gcs", "parameters": params})
    assert response.status_code == 422
    details = response.json()["error_details"]["parameters.credentials.service_account"]
    assert any(message in item for item in details)
    assert b"not a key" not in response.content
    assert not Storage.objects.exists()


def test_key_file_and_hmac_together_are_refused(client, key, service_account_info):
    credentials = {"service_account": service_account_info, "access_key": "GOOG1E", "secret_access_key": "s" * 40}
    response = _create(
        client, key, {"name": "g", "type": "gcs", "parameters": {"bucket": "bkt", "credentials": credentials}}
    )
    assert response.status_code == 422
    assert "parameters.credentials" in response.json()["error_details"]


def test_key_file_with_a_custom_endpoint_off_the_allow_list_is_refused(client, key, settings, service_account_info):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = []
    settings.GENERATOR_STORAGE_ENDPOINT_NETS = ["127.0.0.0/8"]
    params = {
        "bucket": "bkt",
        "endpoint_url": "http://127.0.0.1:9000",
        "credentials": {"service_account": service_account_info},
    }
    response = _create(client, key, {"name": "g", "type": "gcs", "parameters": params})
    assert response.status_code == 422
    assert "only allowed for development emulators" in response.json()["error_message"]


def test_real_google_storage_signs_v4_urls_locally_for_at_most_an_hour(team, service_account_info):
    storage = Storage(team=team, name="g", type="gcs", parameters={"bucket": "acme-videos", "path": "out"})
    storage.secrets_encrypted = encrypt_json({"service_account": service_account_info})
    connector = get_connector(storage)
    assert not connector.anonymous
    url = connector.download_url("v/a.mp4", expires_s=86_400)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.netloc == "storage.googleapis.com"
    assert parts.path == "/acme-videos/out/v/a.mp4"
    assert query["X-Goog-Expires"] == ["3600"]
    assert parse_qs(urlsplit(connector.download_url("v/a.mp4")).query)["X-Goog-Expires"] == ["300"]
    assert query["X-Goog-Credential"][0].startswith(service_account_info["client_email"])
    assert "X-Goog-Signature" in query


def test_hmac_keys_go_through_the_s3_protocol(team, settings, s3_server, s3_bucket):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [s3_server.host_port]
    params = {
        "bucket": s3_bucket,
        "endpoint_url": s3_server.endpoint_url,
        "credentials": {"access_key": s3_server.access_key, "secret_access_key": s3_server.secret_key},
    }
    storage = storage_create(team=team, user=None, name="hmac", type="gcs", parameters=params)
    connector = get_connector(storage)
    assert isinstance(connector, GCSHmacConnector)
    connector.write_bytes("x/y.txt", b"hello", content_type="text/plain")
    assert s3_server.keys(s3_bucket) == ["x/y.txt"]
    assert connector.describe("x/y.txt")["object_uri"] == f"gs://{s3_bucket}/x/y.txt"


def test_hmac_without_endpoint_targets_googles_xml_api(team):
    storage = Storage(team=team, name="g", type="gcs", parameters={"bucket": "acme-videos", "path": ""})
    storage.secrets_encrypted = encrypt_json(
        {"access_key": "GOOG1EXAMPLE", "secret_access_key": "example-secret-value"}
    )
    url = get_connector(storage).download_url("a.mp4")
    assert url.startswith("https://storage.googleapis.com/acme-videos/a.mp4?")
    assert "X-Amz-Expires=300" in url


def test_emulator_walk_lists_a_folder_and_its_subfolders_when_recursive(
    team, gcs_server, gcs_bucket, service_account_info
):
    admin = gcs_server.client().bucket(gcs_bucket)
    for key in ("p/cat/a.png", "p/cat/b.png", "p/cat/sub/c.png", "p/other/x.png"):
        admin.blob(key).upload_from_string(b"x")
    storage = storage_create(
        team=team,
        user=None,
        name="g",
        type="gcs",
        parameters=_emulator_params(gcs_server, gcs_bucket, service_account_info, path="p"),
    )
    connector = get_connector(storage)
    assert [entry.key for entry in connector.walk("cat/", limit=100)] == ["cat/a.png", "cat/b.png"]
    assert [entry.key for entry in connector.walk("cat/", recursive=True, limit=100)] == [
        "cat/a.png",
        "cat/b.png",
        "cat/sub/c.png",
    ]
