"""S3 storages against moto's S3 server on loopback (a real HTTP endpoint with authentication on)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from generator.models import Storage
from generator.services.storage_connections import storage_check, storage_create
from generator.storage.base import StorageError
from generator.storage.registry import get_connector
from tests.harness import bearer
from tests.storage_servers import TRAVERSAL_KEYS, assert_reads_with_a_size_cap, free_closed_port

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _allow_emulator(settings, s3_server):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [s3_server.host_port]


def _params(server, bucket, **extra) -> dict:
    return {
        "bucket": bucket,
        "endpoint_url": server.endpoint_url,
        "credentials": {"access_key": server.access_key, "secret_access_key": server.secret_key},
        **extra,
    }


def _create(client, key, body):
    return client.post("/v1/storage/storages", data=json.dumps(body), content_type="application/json", **bearer(key))


def test_create_s3_storage_checks_the_connection_and_hides_the_secrets(client, key, s3_server, s3_bucket):
    response = _create(
        client, key, {"name": "shop", "type": "s3", "parameters": _params(s3_server, s3_bucket, path="/media/")}
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["parameters"] == {"bucket": s3_bucket, "path": "media", "endpoint_url": s3_server.endpoint_url}
    bodies = [response.content]
    bodies.append(client.get("/v1/storage/storages", **bearer(key)).content)
    bodies.append(client.get(f"/v1/storage/storages/{data['id']}", **bearer(key)).content)
    for body in bodies:
        assert s3_server.secret_key.encode() not in body
        assert s3_server.access_key.encode() not in body
    stored = Storage.objects.get(pk=data["id"])
    assert s3_server.secret_key not in stored.secrets_encrypted
    assert s3_server.secret_key not in json.dumps(stored.parameters)
    assert s3_server.keys(s3_bucket) == []  # the probe object was written, read and deleted


def test_bad_bucket_is_422_with_the_providers_reason(client, key, s3_server):
    response = _create(client, key, {"name": "shop", "type": "s3", "parameters": _params(s3_server, "no-such-bucket")})
    assert response.status_code == 422
    assert "NoSuchBucket" in response.json()["error_message"]
    assert not Storage.objects.exists()


def test_wrong_credentials_are_422_and_never_echoed(client, key, s3_server, s3_bucket):
    wrong_secret = "wrongSecretValue1234567890abcdefghijklmn"
    params = _params(s3_server, s3_bucket)
    params["credentials"] = {"access_key": s3_server.access_key, "secret_access_key": wrong_secret}
    response = _create(client, key, {"name": "shop", "type": "s3", "parameters": params})
    assert response.status_code == 422
    assert "SignatureDoesNotMatch" in response.json()["error_message"]
    assert wrong_secret.encode() not in response.content
    unknown = _params(s3_server, s3_bucket)
    unknown["credentials"] = {"access_key": "AKIAUNKNOWNKEY000001", "secret_access_key": wrong_secret}
    response = _create(client, key, {"name": "shop", "type": "s3", "parameters": unknown})
    assert response.status_code == 422
    assert "InvalidAccessKeyId" in response.json()["error_message"]
    assert b"AKIAUNKNOWNKEY000001" not in response.content
    assert wrong_secret.encode() not in response.content


def test_unreachable_endpoint_is_a_quick_clear_422(client, key, settings, s3_bucket):
    port = free_closed_port()
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{port}"]
    body = {
        "name": "shop",
        "type": "s3",
        "parameters": {
            "bucket": s3_bucket,
            "endpoint_url": f"http://127.0.0.1:{port}",
            "credentials": {"access_key": "AKIAEXAMPLE", "secret_access_key": "secret-example-value"},
        },
    }
    started = time.monotonic()
    response = _create(client, key, body)
    elapsed = time.monotonic() - started
    assert response.status_code == 422
    assert "Could not connect" in response.json()["error_message"]
    assert elapsed < 5


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        ("http://127.0.0.1:9000", "private, loopback"),
        ("http://10.0.0.5", "private, loopback"),
        ("http://[::1]:9000", "private, loopback"),
        ("http://2130706433", "private, loopback"),
        ("ftp://example.com", "only http and https"),
        ("http://user:pw@example.com", "user information"),
        ("http://localhost:9000", "private, loopback"),
        ("http://93.184.216.34:9000", "port 9000"),
        ("http://example.com/?x=1", "query"),
        ("http://localhost", "private, loopback"),
        ("http://metadata.google.internal", "metadata"),
    ],
)
def test_endpoint_url_follows_the_address_policy(client, key, s3_server, endpoint, fragment):
    params = _params(s3_server, "some-bucket", endpoint_url=endpoint)
    response = _create(client, key, {"name": "shop", "type": "s3", "parameters": params})
    assert response.status_code == 422
    assert fragment in response.json()["error_message"] + json.dumps(response.json()["error_details"])


def test_operator_networks_allow_a_private_endpoint_on_any_port(settings):
    from generator.storage.endpoints import check_endpoint_address

    settings.GENERATOR_FETCH_ALLOW_HOSTS = []
    settings.GENERATOR_STORAGE_ENDPOINT_NETS = ["127.0.0.0/8"]
    check_endpoint_address("http://127.0.0.1:9000")
    check_endpoint_address("http://localhost:9000")


def test_browse_read_write_and_presign_against_the_bucket(team, s3_server, s3_bucket):
    admin = s3_server.client()
    photo = (FIXTURES / "coffee.png").read_bytes()
    admin.put_object(Bucket=s3_bucket, Key="p/in/shoe.png", Body=photo)
    admin.put_object(Bucket=s3_bucket, Key="p/in/sub/deep.png", Body=b"x")
    admin.put_object(Bucket=s3_bucket, Key="outside.png", Body=b"not under the prefix")
    storage = storage_create(
        team=team, user=None, name="s", type="s3", parameters=_params(s3_server, s3_bucket, path="p")
    )
    connector = get_connector(storage)
    root = connector.list("")
    assert [(e.name, e.key, e.is_folder) for e in root] == [("in", "in/", True)]
    folder = connector.list("in/")
    assert [(e.name, e.key, e.is_folder, e.size) for e in folder] == [
        ("sub", "in/sub/", True, None),
        ("shoe.png", "in/shoe.png", False, len(photo)),
    ]
    assert_reads_with_a_size_cap(connector, "in/shoe.png", photo)
    connector.write_file("out/exact.mp4", str(FIXTURES / "chelsea.png"), content_type="video/mp4")
    head = admin.head_object(Bucket=s3_bucket, Key="p/out/exact.mp4")
    assert head["ContentType"] == "video/mp4"
    assert connector.exists("out/exact.mp4")
    assert not connector.exists("out/other.mp4")
    assert connector.describe("out/exact.mp4") == {
        "object_key": "p/out/exact.mp4",
        "object_bucket": s3_bucket,
        "object_uri": f"s3://{s3_bucket}/p/out/exact.mp4",
    }
    assert "X-Amz-Expires=3600" in connector.download_url("in/shoe.png", expires_s=86_400)
    url = connector.download_url("in/shoe.png")
    assert url.startswith(s3_server.endpoint_url)
    assert "X-Amz-Expires=300" in url
    with s3_server.presigned_requests_allowed():
        fetched = httpx.get(url, timeout=5)
    assert fetched.status_code == 200
    assert fetched.content == photo
    connector.delete("out/exact.mp4")
    connector.delete("out/exact.mp4")  # deleting a missing object is fine
    assert s3_server.keys(s3_bucket) == ["outside.png", "p/in/shoe.png", "p/in/sub/deep.png"]
    assert storage_check(storage=storage).ok


@pytest.mark.parametrize("key", TRAVERSAL_KEYS)
def test_traversal_keys_never_reach_outside_the_prefix(team, s3_server, s3_bucket, key):
    admin = s3_server.client()
    admin.put_object(Bucket=s3_bucket, Key="outside.png", Body=b"secret")
    storage = storage_create(
        team=team, user=None, name="s", type="s3", parameters=_params(s3_server, s3_bucket, path="p")
    )
    connector = get_connector(storage)
    source = str(FIXTURES / "coffee.png")
    for attempt in (
        lambda: connector.read(key, max_bytes=1000),
        lambda: connector.write_file(key, source, content_type="image/png"),
        lambda: connector.delete(key),
        lambda: connector.exists(key),
        lambda: connector.download_url(key),
        lambda: connector.list(key),
    ):
        with pytest.raises(StorageError):
            attempt()
    assert s3_server.keys(s3_bucket) == ["outside.png"]
    assert admin.get_object(Bucket=s3_bucket, Key="outside.png")["Body"].read() == b"secret"


def test_deleting_a_storage_leaves_the_bucket_intact(client, key, s3_server, s3_bucket):
    s3_server.client().put_object(Bucket=s3_bucket, Key="keep/me.png", Body=b"data")
    pk = _create(client, key, {"name": "shop", "type": "s3", "parameters": _params(s3_server, s3_bucket)}).json()[
        "data"
    ]["id"]
    response = client.delete(f"/v1/storage/storages/{pk}", **bearer(key))
    assert response.status_code == 200
    assert s3_server.keys(s3_bucket) == ["keep/me.png"]


def test_patch_keeps_credentials_unless_given_and_rechecks(client, key, s3_server, s3_bucket):
    pk = _create(client, key, {"name": "shop", "type": "s3", "parameters": _params(s3_server, s3_bucket)}).json()[
        "data"
    ]["id"]
    url = f"/v1/storage/storages/{pk}"
    ok = client.patch(
        url, data=json.dumps({"parameters": {"path": "new/"}}), content_type="application/json", **bearer(key)
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["data"]["parameters"]["path"] == "new"
    bad = client.patch(
        url,
        data=json.dumps({"parameters": {"bucket": "missing-bucket"}}),
        content_type="application/json",
        **bearer(key),
    )
    assert bad.status_code == 422
    assert Storage.objects.get(pk=pk).parameters["bucket"] == s3_bucket
    for body in (ok.content, bad.content):
        assert s3_server.secret_key.encode() not in body


def test_s3_storage_without_endpoint_does_not_touch_the_network_when_built(team):
    storage = Storage(
        team=team, name="aws", type="s3", parameters={"bucket": "my-bucket", "path": "", "region": "eu-west-1"}
    )
    from generator.crypto import encrypt_json

    storage.secrets_encrypted = encrypt_json({"access_key": "AKIAEXAMPLE", "secret_access_key": "example-secret"})
    connector = get_connector(storage)
    url = connector.download_url("a/b.mp4")
    assert url.startswith("https://my-bucket.s3.")
    assert "X-Amz-Expires=300" in url
    assert "example-secret" not in url


def test_rename_alone_does_not_recheck_but_a_parameter_change_does(client, key, team, settings):
    from generator.crypto import encrypt_json

    port = free_closed_port()
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{port}"]
    storage = Storage.objects.create(
        team=team,
        name="old",
        type="s3",
        parameters={"bucket": "bkt", "path": "", "endpoint_url": f"http://127.0.0.1:{port}"},
        secrets_encrypted=encrypt_json({"access_key": "AKIAEXAMPLE", "secret_access_key": "example-secret"}),
    )
    url = f"/v1/storage/storages/{storage.pk}"
    renamed = client.patch(url, data=json.dumps({"name": "new"}), content_type="application/json", **bearer(key))
    assert renamed.status_code == 200
    assert renamed.json()["data"]["name"] == "new"
    changed = client.patch(
        url, data=json.dumps({"parameters": {"path": "x"}}), content_type="application/json", **bearer(key)
    )
    assert changed.status_code == 422
    assert "Could not connect" in changed.json()["error_message"]
    storage.refresh_from_db()
    assert storage.parameters["path"] == ""


def test_patch_null_removes_an_optional_parameter_and_new_credentials_replace_old(client, key, s3_server, s3_bucket):
    params = _params(s3_server, s3_bucket, region="us-east-1")
    pk = _create(client, key, {"name": "shop", "type": "s3", "parameters": params}).json()["data"]["id"]
    url = f"/v1/storage/storages/{pk}"
    response = client.patch(
        url, data=json.dumps({"parameters": {"region": None}}), content_type="application/json", **bearer(key)
    )
    assert response.status_code == 200, response.content
    assert "region" not in response.json()["data"]["parameters"]
    wrong = {"credentials": {"access_key": s3_server.access_key, "secret_access_key": "x" * 40}}
    response = client.patch(url, data=json.dumps({"parameters": wrong}), content_type="application/json", **bearer(key))
    assert response.status_code == 422
    from generator.crypto import decrypt_json

    assert decrypt_json(Storage.objects.get(pk=pk).secrets_encrypted)["secret_access_key"] == s3_server.secret_key


def test_walk_pages_past_a_thousand_keys_and_goes_into_subfolders_only_when_recursive(team, s3_server, s3_bucket):
    admin = s3_server.client()
    keys = [f"p/cat/{index:04}.png" for index in range(1005)] + ["p/cat/sub/deep.png", "p/other/x.png"]
    for key in keys:
        admin.put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    storage = storage_create(
        team=team, user=None, name="s", type="s3", parameters=_params(s3_server, s3_bucket, path="p")
    )
    connector = get_connector(storage)
    flat = connector.walk("cat/", limit=5000)
    assert [entry.key for entry in flat] == [f"cat/{index:04}.png" for index in range(1005)]
    deep = connector.walk("cat/", recursive=True, limit=5000)
    assert [entry.key for entry in deep][-1] == "cat/sub/deep.png"
    assert len(deep) == 1006
    assert len(connector.walk("", recursive=True, limit=10)) == 10
