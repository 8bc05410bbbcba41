"""/v1/video/batches over HTTP: accept (with Idempotency-Key), list, get with paginated items, cancel,
results.csv and archive.zip (real videos from the real worker), the finish webhook, and scoping."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import av
import pytest
from django.db import connection
from PIL import Image

from generator.models import Batch, BatchItem, CreditLedger, Generation, Storage, WebhookDelivery
from generator.services import webhooks
from generator.services.batches import batches_dispatch
from generator.services.webhooks import webhook_signature
from generator.services.worker import generation_run_next
from generator.storage.local import LocalConnector
from tests.factories import make_api_key, make_member, make_team
from tests.test_api import Api

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OPTIONS = {"prompt": "slow zoom in", "duration": 5}
URLS = [f"https://shop.example/p/{index}.jpg" for index in range(5)]


@pytest.fixture
def team(db):
    return make_team(credits=1000, rate_per_second=100, rate_per_minute=1000)


@pytest.fixture
def api(client, team):
    return Api(client, make_api_key(team, user=make_member(team).user))


def photos(settings, team, names) -> None:
    folder = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / team.slug / "in"
    folder.mkdir(parents=True, exist_ok=True)
    image = Image.open(FIXTURES / "coffee.png").convert("RGB").resize((300, 300))
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(folder / name, format="PNG")
    Storage.objects.get_or_create(team=team, name="in", defaults={"type": "local", "parameters": {"path": "in"}})


def test_a_bad_input_list_is_a_422_envelope_naming_each_index(api):
    response = api.post("/v1/video/batches", {"inputs": [URLS[0], "ftp://x/a.jpg", 7], "options": OPTIONS})
    assert response.status_code == 422
    body = response.json()
    assert (body["error_code"], body["error_type"]) == ("9000", "validation")
    assert list(body["error_details"]) == ["inputs.1", "inputs.2"]
    assert body["error_message"].startswith("inputs.1: ")
    assert Batch.objects.count() == 0
    assert api.post("/v1/video/batches", raw="{not json").status_code == 400


def test_accepting_answers_at_once_with_id_count_and_total_cost_and_charges_nothing(api, team):
    response = api.post("/v1/video/batches", {"inputs": URLS, "options": {**OPTIONS, "duration": 10}})
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["state"], data["item_count"], data["cost_per_item"], data["total_cost"]) == ("running", 5, 70, 350)
    assert data["counts"] == {"PENDING": 5, "PROCESSING": 0, "DONE": 0, "ERROR": 0, "CANCELLED": 0}
    assert data["result_url"] == f"http://testserver/v1/video/batches/{data['id']}"
    assert data["options"] == {"prompt": "slow zoom in", "duration": 10, "guidance_scale": 0.5}
    assert "output" not in data
    team.refresh_from_db()
    assert team.balance == 1000
    assert not CreditLedger.objects.filter(kind="hold").exists()


def test_idempotency_key_replays_the_first_batch_and_binds_the_key_to_its_body(api):
    body = {"inputs": URLS, "options": OPTIONS}
    first = api.post("/v1/video/batches", body, **{"Idempotency-Key": "spring-catalogue"})
    again = api.post("/v1/video/batches", body, **{"Idempotency-Key": "spring-catalogue"})
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Batch.objects.count() == 1
    other = api.post("/v1/video/batches", {**body, "inputs": URLS[:2]}, **{"Idempotency-Key": "spring-catalogue"})
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["error_details"]
    assert Batch.objects.count() == 1


def test_a_folder_is_listed_and_checked_outside_the_transaction_that_writes_the_batch(api, settings, team, monkeypatch):
    """On SQLite an open transaction holds the one write lock: a slow bucket listing must not hold it."""
    photos(settings, team, ["a.png", "b.png"])
    outside = len(connection.atomic_blocks)  # the test's own transaction
    seen: list[int] = []
    real_walk = LocalConnector.walk

    def walk(self, *args, **kwargs):
        seen.append(len(connection.atomic_blocks))
        return real_walk(self, *args, **kwargs)

    monkeypatch.setattr(LocalConnector, "walk", walk)
    body = {"input_folder": "storage://in/", "options": OPTIONS}
    response = api.post("/v1/video/batches", body, **{"Idempotency-Key": "folder"})
    assert response.status_code == 200
    assert response.json()["data"]["item_count"] == 2
    assert seen == [outside]
    assert api.post("/v1/video/batches", body, **{"Idempotency-Key": "folder"})["Idempotent-Replayed"] == "true"
    assert seen == [outside]  # a replay lists nothing
    assert Batch.objects.count() == 1


def test_get_pages_through_items_in_input_order_and_filters_by_status(api, team):
    batch_id = api.post("/v1/video/batches", {"inputs": URLS, "options": OPTIONS}).json()["data"]["id"]
    batches_dispatch()
    first = api.get(f"/v1/video/batches/{batch_id}", {"limit": 2}).json()["data"]
    assert [item["position"] for item in first["items"]] == [1, 2]
    assert first["items"][0] == {
        "position": 1,
        "input": URLS[0],
        "status": "PROCESSING",
        "output_name": "0.mp4",
        "generation_id": BatchItem.objects.get(batch_id=batch_id, position=1).generation_id,
    }
    second = api.get(f"/v1/video/batches/{batch_id}", {"limit": 2, "cursor": first["next_cursor"]}).json()["data"]
    third = api.get(f"/v1/video/batches/{batch_id}", {"limit": 2, "cursor": second["next_cursor"]}).json()["data"]
    assert [item["position"] for item in second["items"] + third["items"]] == [3, 4, 5]
    assert third["next_cursor"] is None
    assert first["counts"]["PROCESSING"] == 5
    Generation.objects.filter(pk=first["items"][1]["generation_id"]).update(
        status="ERROR", stage="error", errors=[{"error": "could not fetch", "created_at": "2026-01-01T00:00:00+00:00"}]
    )
    failed = api.get(f"/v1/video/batches/{batch_id}", {"status": "error"}).json()["data"]
    assert [(item["position"], item["error"]) for item in failed["items"]] == [(2, "could not fetch")]
    assert api.get(f"/v1/video/batches/{batch_id}", {"limit": 0}).status_code == 422
    assert api.get(f"/v1/video/batches/{batch_id}", {"cursor": "nope"}).status_code == 422
    listed = api.get("/v1/video/batches").json()
    assert [batch["id"] for batch in listed["data"]] == [batch_id]
    assert listed["data"][0]["counts"]["ERROR"] == 1


def test_another_team_s_batch_is_a_404_everywhere_and_scopes_are_checked(api, client, team):
    batch_id = api.post("/v1/video/batches", {"inputs": URLS, "options": OPTIONS}).json()["data"]["id"]
    stranger = Api(client, make_api_key(make_team()))
    for path in ("", "/results.csv", "/archive.zip"):
        response = stranger.get(f"/v1/video/batches/{batch_id}{path}")
        assert response.status_code == 404
        assert response.json()["error_code"] == "1004"
    assert stranger.post(f"/v1/video/batches/{batch_id}/cancel").status_code == 404
    assert stranger.get("/v1/video/batches").json()["data"] == []
    storage_only = Api(client, make_api_key(team, scopes=["storage"]))
    assert storage_only.post("/v1/video/batches", {"inputs": URLS, "options": OPTIONS}).status_code == 403
    assert Api(client, None).get("/v1/video/batches").status_code == 401
    assert api.get("/v1/video/batches/99999999").status_code == 404


def test_cancel_answers_the_batch_then_409_once_it_is_done(api, team):
    batch_id = api.post("/v1/video/batches", {"inputs": URLS, "options": OPTIONS}).json()["data"]["id"]
    response = api.post(f"/v1/video/batches/{batch_id}/cancel")
    assert response.status_code == 200
    assert response.json()["data"]["state"] == "cancelled"
    assert response.json()["data"]["counts"]["CANCELLED"] == 5
    assert api.post(f"/v1/video/batches/{batch_id}/cancel").status_code == 200
    done = api.post("/v1/video/batches", {"inputs": URLS, "options": OPTIONS}).json()["data"]["id"]
    Batch.objects.filter(pk=done).update(state="done")
    conflict = api.post(f"/v1/video/batches/{done}/cancel")
    assert conflict.status_code == 409
    assert conflict.json()["error_code"] == "1009"


def _decoded_frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def test_results_csv_and_archive_zip_list_and_hold_every_finished_video(api, settings, team):
    photos(settings, team, ["shoe.png", "mug.png", "deep/shoe.png"])
    body = {
        "inputs": ["storage://in/shoe.png", "storage://in/mug.png", "storage://in/deep/shoe.png"],
        "options": OPTIONS,
    }
    body["inputs"].append("storage://in/missing.png")
    batch_id = api.post("/v1/video/batches", body).json()["data"]["id"]
    batches_dispatch()
    while generation_run_next() is not None:
        pass
    batches_dispatch()
    assert Batch.objects.get(pk=batch_id).state == "done"

    response = api.get(f"/v1/video/batches/{batch_id}/results.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="batch-{batch_id}-results.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(row["position"], row["input"], row["status"], row["output_name"]) for row in rows] == [
        ("1", "storage://in/shoe.png", "DONE", "shoe.mp4"),
        ("2", "storage://in/mug.png", "DONE", "mug.mp4"),
        ("3", "storage://in/deep/shoe.png", "DONE", "shoe-2.mp4"),
        ("4", "storage://in/missing.png", "ERROR", "missing.mp4"),
    ]
    assert all(row["link"].startswith("http://testserver/v/") for row in rows[:3])
    assert rows[3]["link"] == ""
    assert "no object" in rows[3]["error"]

    response = api.get(f"/v1/video/batches/{batch_id}/archive.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["shoe.mp4", "mug.mp4", "shoe-2.mp4"]
    assert archive.testzip() is None
    assert {name: _decoded_frames(archive.read(name)) for name in archive.namelist()} == dict.fromkeys(
        archive.namelist(), 150
    )


def test_a_finished_batch_is_posted_once_to_the_team_webhook_signed(api, team, monkeypatch):
    secret = webhooks.webhook_configure(team=team, url="https://hooks.example/video")
    sent: list[tuple] = []
    monkeypatch.setattr(webhooks, "enqueue_on_commit", lambda task, *args: sent.append((task, args)))
    posted: list[tuple] = []
    monkeypatch.setattr(
        webhooks, "post_bytes", lambda url, *, content, headers: posted.append((url, content, headers)) or 204
    )
    batch_id = api.post("/v1/video/batches", {"inputs": URLS[:2], "options": OPTIONS}).json()["data"]["id"]
    batches_dispatch()
    Generation.objects.filter(team=team).update(status="DONE", stage="done")
    batches_dispatch()
    batches_dispatch()
    assert [task for task, _ in sent if "batch" in task] == [webhooks.BATCH_WEBHOOK_TASK]
    webhooks.batch_webhook_deliver(batch_id=batch_id, attempt=1)
    webhooks.batch_webhook_deliver(batch_id=batch_id, attempt=1)  # the broker repeated the task
    assert len(posted) == 1
    url, content, headers = posted[0]
    assert url == "https://hooks.example/video"
    assert headers[webhooks.SIGNATURE_HEADER] == webhook_signature(secret=secret, body=content)
    assert headers["X-Generator-Event"] == "batch.finished"
    data = json.loads(content)["data"]
    assert (data["id"], data["state"], data["counts"]["DONE"]) == (batch_id, "done", 2)
    assert WebhookDelivery.objects.get(batch_id=batch_id).status_code == 204


def test_the_openapi_document_describes_every_batch_endpoint(client):
    document = client.get("/v1/openapi.json").json()
    assert {path for path in document["paths"] if "batches" in path} == {
        "/v1/video/batches",
        "/v1/video/batches/{id}",
        "/v1/video/batches/{id}/cancel",
        "/v1/video/batches/{id}/results.csv",
        "/v1/video/batches/{id}/archive.zip",
    }
    create = document["paths"]["/v1/video/batches"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchCreate"
    }
    assert "Idempotency-Key" in [parameter["name"] for parameter in create["parameters"]]
    archive = document["paths"]["/v1/video/batches/{id}/archive.zip"]["get"]["responses"]["200"]["content"]
    assert archive == {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
    assert "inputs" in document["components"]["schemas"]["BatchCreate"]["properties"]
