"""Local storages: the API, validation rules and the folder-escape guards (docs/api.md, docs/security.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.conf import settings

from generator.models import Storage
from generator.services.storage_connections import storage_create, storage_to_api
from generator.storage.base import ObjectMissing, StorageError
from generator.storage.registry import get_connector, supported_types
from tests.factories import make_api_key, make_team
from tests.harness import bearer

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.django_db


def _post(client, key, body, url="/v1/storage/storages"):
    return client.post(url, data=json.dumps(body), content_type="application/json", **bearer(key))


def _patch(client, key, pk, body):
    return client.patch(
        f"/v1/storage/storages/{pk}", data=json.dumps(body), content_type="application/json", **bearer(key)
    )


def test_storage_types_lists_the_supported_types(client, key):
    response = client.get("/v1/storage/storage-types", **bearer(key))
    assert response.status_code == 200
    assert response.json() == {"data": ["s3", "gcs", "local"]}
    assert supported_types() == ["s3", "gcs", "local"]


def test_create_local_storage_makes_the_team_folder_and_answers_the_contract(client, key, team):
    response = _post(client, key, {"name": "shots", "type": "local", "parameters": {"path": "/in/photos/"}})
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert set(data) == {"id", "name", "type", "parameters", "created_at"}
    assert data["parameters"] == {"path": "in/photos"}
    assert data["created_at"].endswith("+00:00")
    assert "." in data["created_at"]
    folder = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / "acme" / "in" / "photos"
    assert folder.is_dir()
    assert list(folder.iterdir()) == []  # the probe object was deleted again


def test_list_detail_patch_delete_round_trip(client, key, team):
    pk = _post(client, key, {"name": "a", "type": "local", "parameters": {}}).json()["data"]["id"]
    assert [s["name"] for s in client.get("/v1/storage/storages", **bearer(key)).json()["data"]] == ["a"]
    assert client.get(f"/v1/storage/storages/{pk}", **bearer(key)).json()["data"]["name"] == "a"
    patched = _patch(client, key, pk, {"name": "b", "parameters": {"path": "x"}})
    assert patched.status_code == 200, patched.content
    assert patched.json()["data"]["name"] == "b"
    assert patched.json()["data"]["parameters"] == {"path": "x"}
    deleted = client.delete(f"/v1/storage/storages/{pk}", **bearer(key))
    assert deleted.json() == {"data": {"id": pk}}
    assert client.get(f"/v1/storage/storages/{pk}", **bearer(key)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "-bad", "type": "local", "parameters": {}}, "name"),
        ({"name": "x" * 51, "type": "local", "parameters": {}}, "name"),
        ({"name": "ok", "type": "ftp", "parameters": {}}, "type"),
        ({"name": "ok", "type": "local", "parameters": {"path": "../up"}}, "parameters.path"),
        ({"name": "ok", "type": "local", "parameters": {"path": "a/%2e%2e/b"}}, "parameters.path"),
        ({"name": "ok", "type": "local", "parameters": {"path": "a\\b"}}, "parameters.path"),
        ({"name": "ok", "type": "local", "parameters": {"path": "a//b"}}, "parameters.path"),
        ({"name": "ok", "type": "local", "parameters": {"bucket": "x"}}, "parameters.bucket"),
        ({"name": "ok", "type": "local", "parameters": [], "extra": 1}, "extra"),
        ({"type": "local"}, "name"),
        ({"name": "ok", "type": "s3", "parameters": {"bucket": "b"}}, "parameters.bucket"),
        ({"name": "ok", "type": "s3", "parameters": {"bucket": "bucket"}}, "parameters.credentials"),
    ],
)
def test_invalid_create_bodies_answer_422_naming_the_field(client, key, body, field):
    response = _post(client, key, body)
    assert response.status_code == 422, response.content
    payload = response.json()
    assert payload["error_code"] == "9000"
    assert field in payload["error_details"]
    assert not Storage.objects.exists()


def test_duplicate_name_in_the_same_team_is_422_but_fine_in_another_team(client, key, team):
    assert _post(client, key, {"name": "dup", "type": "local"}).status_code == 201
    again = _post(client, key, {"name": "dup", "type": "local"})
    assert again.status_code == 422
    assert "name" in again.json()["error_details"]
    other_key = make_api_key(make_team(slug="other"), scopes=["storage"])
    assert _post(client, other_key, {"name": "dup", "type": "local"}).status_code == 201


def test_malformed_json_is_400(client, key):
    response = client.post("/v1/storage/storages", data="{nope", content_type="application/json", **bearer(key))
    assert response.status_code == 400
    assert response.json()["error_code"] == "1000"


def test_another_teams_storage_is_404_for_every_method(client, key):
    other = make_team(slug="other")
    foreign = storage_create(team=other, user=None, name="theirs", type="local", parameters={})
    url = f"/v1/storage/storages/{foreign.pk}"
    assert client.get(url, **bearer(key)).status_code == 404
    assert _patch(client, key, foreign.pk, {"name": "mine"}).status_code == 404
    assert client.delete(url, **bearer(key)).status_code == 404
    assert Storage.objects.filter(pk=foreign.pk, name="theirs").exists()
    assert client.get("/v1/storage/storages", **bearer(key)).json() == {"data": []}


def test_key_without_storage_scope_is_403_and_missing_key_401(client, team):
    generation_only = make_api_key(team, scopes=["video_generation"])
    for url in ("/v1/storage/storage-types", "/v1/storage/storages", "/v1/storage/storages/1"):
        assert client.get(url, **bearer(generation_only)).status_code == 403
        assert client.get(url).status_code == 401
    assert _post(client, generation_only, {"name": "x", "type": "local"}).status_code == 403


def test_patch_cannot_change_the_type_and_rejects_unknown_fields(client, key):
    pk = _post(client, key, {"name": "a", "type": "local"}).json()["data"]["id"]
    assert _patch(client, key, pk, {"type": "s3"}).status_code == 422
    assert _patch(client, key, pk, {"colour": "red"}).status_code == 422
    assert client.put(f"/v1/storage/storages/{pk}", **bearer(key)).status_code == 405


def test_local_connector_reads_writes_lists_and_describes(team, tmp_path):
    storage = storage_create(team=team, user=None, name="s", type="local", parameters={"path": "base"})
    connector = get_connector(storage)
    source = FIXTURES / "coffee.png"
    connector.write_file("out/video.mp4", str(source), content_type="video/mp4")
    assert connector.exists("out/video.mp4")
    assert connector.read("out/video.mp4", max_bytes=10_000_000) == source.read_bytes()
    with pytest.raises(StorageError, match="larger than"):
        connector.read("out/video.mp4", max_bytes=10)
    with pytest.raises(ObjectMissing):
        connector.read("out/none.png", max_bytes=10)
    connector.write_file("a.png", str(source), content_type="image/png")
    entries = connector.list("")
    assert [(e.name, e.key, e.is_folder) for e in entries] == [("out", "out/", True), ("a.png", "a.png", False)]
    assert connector.list("out/")[0].key == "out/video.mp4"
    assert connector.describe("out/video.mp4") == {
        "object_key": "base/out/video.mp4",
        "object_bucket": "acme",
        "object_uri": "local://acme/base/out/video.mp4",
    }
    assert connector.download_url("a.png") is None
    with connector.open_local("a.png") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    connector.delete("a.png")
    assert not connector.exists("a.png")


@pytest.mark.parametrize(
    "key",
    [
        "../secret.txt",
        "a/../../secret.txt",
        "/etc/passwd",
        "%2e%2e/secret.txt",
        "a%252f..%252f..%252fsecret.txt",
        "a\\..\\secret.txt",
        "a//b",
        "nul\x00.txt",
        "x" * 1025,
    ],
)
def test_local_connector_refuses_traversal_keys(team, key):
    secret = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / "acme" / "secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("team-level file outside the storage")
    connector = get_connector(storage_create(team=team, user=None, name="s", type="local", parameters={"path": "box"}))
    with pytest.raises(StorageError):
        connector.read(key, max_bytes=1000)
    with pytest.raises(StorageError):
        connector.write_file(key, str(FIXTURES / "coffee.png"), content_type="image/png")
    assert secret.read_text() == "team-level file outside the storage"


def test_local_connector_does_not_follow_symlinks_out_of_the_storage(team):
    root = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT)
    other_team_file = root / "other" / "private.jpg"
    other_team_file.parent.mkdir(parents=True)
    other_team_file.write_bytes(b"other team's photo")
    connector = get_connector(storage_create(team=team, user=None, name="s", type="local", parameters={}))
    os.symlink(other_team_file, root / "acme" / "link.jpg")
    os.symlink(root / "other", root / "acme" / "linkdir")
    with pytest.raises(StorageError, match="outside"):
        connector.read("link.jpg", max_bytes=1000)
    with pytest.raises(StorageError, match="outside"):
        connector.write_file("linkdir/evil.mp4", str(FIXTURES / "coffee.png"), content_type="video/mp4")
    assert [e.name for e in connector.list("")] == []
    assert not (root / "other" / "evil.mp4").exists()


def test_two_teams_local_storages_are_separate_folders(team):
    other = make_team(slug="other")
    mine = get_connector(storage_create(team=team, user=None, name="s", type="local", parameters={}))
    theirs = get_connector(storage_create(team=other, user=None, name="s", type="local", parameters={}))
    mine.write_bytes("x.txt", b"mine")
    assert not theirs.exists("x.txt")
    assert storage_to_api(Storage.objects.get(team=other))["parameters"] == {"path": ""}


def test_walk_lists_files_in_key_order_and_subfolders_only_when_recursive(settings):
    from generator.storage.local import LocalConnector

    root = settings.GENERATOR_LOCAL_STORAGE_ROOT / "walkers" / "cat"
    for name in ("b.png", "a.png", "sub/c.png", "sub/deeper/d.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    connector = LocalConnector(parameters={"path": "cat"}, secrets={}, team_slug="walkers")
    assert [entry.key for entry in connector.walk("", limit=100)] == ["a.png", "b.png"]
    assert [entry.key for entry in connector.walk("", recursive=True, limit=100)] == [
        "a.png",
        "b.png",
        "sub/c.png",
        "sub/deeper/d.png",
    ]
    assert [entry.key for entry in connector.walk("sub/", recursive=True, limit=1)] == ["sub/c.png"]
