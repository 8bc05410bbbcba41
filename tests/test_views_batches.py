"""Batches in the dashboard: the Batch mode of Generate (folder, list/CSV, files), the Batches page and its live
rows, one batch's page, cancel, retry, downloads, the gallery filter, the job page, and team scoping."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from generator.models import Batch, Generation, Storage
from generator.services.batches import batch_create, batches_dispatch
from tests.factories import FORM_OPTIONS, make_member, make_team, make_user, png_header_only

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OPTIONS = {"prompt": "slow zoom in", "duration": 5}


@pytest.fixture
def team():
    return make_team("Acme", credits=1000, slug="acme", rate_per_second=100, rate_per_minute=1000)


def png(name: str = "shoe.png") -> io.BytesIO:
    buffer = io.BytesIO()
    Image.open(FIXTURES / "coffee.png").convert("RGB").resize((320, 320)).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = name
    return buffer


def photo_storage(settings, team, files=("a.png", "b.png")) -> Storage:
    folder = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / team.slug / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        (folder / name).write_bytes(png().getvalue())
    return Storage.objects.create(team=team, name="photos", type="local", parameters={"path": "photos"})


def batch_form(**overrides) -> dict:
    return {"batch_source": "folder", "input_folder": "storage://photos/", **FORM_OPTIONS, **overrides}


def test_generate_has_a_batch_mode_with_a_folder_picker(member_client, settings, team):
    storage = photo_storage(settings, team)
    html = member_client.get(reverse("generator:home") + "?mode=batch").content.decode()
    assert 'action="/batches/new"' in html
    assert 'aria-current="page">Batch</a>' in html
    assert f"/storages/{storage.pk}/browse?pick=folder" in html
    picker = member_client.get(
        reverse("generator:storage-browse", args=[storage.pk]) + "?pick=folder", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'data-pick="storage://photos/" data-pick-target="id_input_folder"' in picker
    assert "Use this folder" in picker
    assert "?folder=" not in picker or "pick=folder" in picker
    single = member_client.get(reverse("generator:home")).content.decode()
    assert 'action="/generate/"' in single
    assert 'action="/batches/new"' not in single


def test_a_folder_batch_from_the_form_starts_and_lands_on_its_page(member_client, settings, team, member):
    photo_storage(settings, team, files=("a.png", "b.png", "notes.txt"))
    response = member_client.post(reverse("generator:batch-new"), batch_form(recursive="on"))
    batch = Batch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("generator:batch-detail", args=[batch.uuid])
    assert (batch.item_count, batch.created_by, batch.source["recursive"]) == (2, member.user, True)
    page = member_client.get(response["Location"]).content.decode()
    assert "Started a batch of 2 videos" in page
    assert f'id="batch-{batch.uuid}"' in page
    assert 'hx-trigger="every 2s"' in page
    assert "storage://photos/a.png" in page.replace("<wbr>", "")


def test_a_pasted_list_with_a_bad_entry_comes_back_naming_it_and_nothing_starts(member_client, team):
    text = "https://shop.example/a.jpg\nftp://shop.example/b.jpg\n"
    response = member_client.post(
        reverse("generator:batch-new"), batch_form(batch_source="list", url_list=text), follow=True
    )
    assert response.redirect_chain == [("/?mode=batch", 302)]  # Post/Redirect/Get: back to the form
    html = response.content.decode()
    assert "The batch was not started" in html
    assert "Entry 2: only http and https URLs are allowed" in html
    assert Batch.objects.count() == 0
    response = member_client.post(
        reverse("generator:batch-new"),
        batch_form(batch_source="list", url_list="https://shop.example/a.jpg", prompt="x"),
        follow=True,
    )
    assert response.redirect_chain == [("/?mode=batch", 302)]  # Post/Redirect/Get: back to the form
    assert "at least 3 characters" in response.content.decode()


def test_a_csv_file_and_several_uploaded_files_make_batches(member_client, team):
    csv_file = io.BytesIO(b"sku,image\n1,https://shop.example/1.jpg\n2,https://shop.example/2.jpg\n")
    csv_file.name = "export.csv"
    response = member_client.post(
        reverse("generator:batch-new"), {**batch_form(batch_source="list"), "url_file": csv_file}
    )
    assert response.status_code == 302
    first = Batch.objects.get()
    assert list(first.items.values_list("input", flat=True)) == [
        "https://shop.example/1.jpg",
        "https://shop.example/2.jpg",
    ]
    assert first.source == {"type": "csv"}
    files = [png("Blue shirt.png"), png("mug.PNG"), png("../../etc/mug.png")]
    response = member_client.post(reverse("generator:batch-new"), {**batch_form(batch_source="files"), "images": files})
    assert response.status_code == 302
    uploads = Batch.objects.exclude(pk=first.pk).get()
    items = list(uploads.items.order_by("position").values_list("input", "output_name"))
    assert all(value.startswith("storage://uploads/") for value, _ in items)
    # The videos are named after the user's files (made safe), not the random names they are kept under.
    assert [name for _, name in items] == ["Blue-shirt.mp4", "mug.mp4", "mug-2.mp4"]
    assert [value.rsplit("/", 1)[1] for value, _ in items] == ["Blue-shirt.png", "mug.png", "mug.png"]
    assert uploads.source == {"type": "uploads"}


def test_refused_uploaded_files_leave_nothing_behind(member_client, team, settings):
    response = member_client.post(
        reverse("generator:batch-new"),
        {**batch_form(batch_source="files", prompt="no"), "images": [png("a.png"), png("b.png")]},
        follow=True,
    )
    assert response.redirect_chain == [("/?mode=batch", 302)]  # Post/Redirect/Get: back to the form
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "uploads"
    assert not [path for path in folder.rglob("*") if path.is_file()]


def test_an_uploaded_file_over_the_pixel_cap_refuses_the_batch_naming_that_file(member_client, team, settings):
    bomb = io.BytesIO(png_header_only(20_000, 20_000))  # 70 bytes claiming more than Pillow's own bomb limit
    bomb.name = "huge.png"
    response = member_client.post(
        reverse("generator:batch-new"),
        {**batch_form(batch_source="files"), "images": [png("a.png"), bomb]},
        follow=True,
    )
    assert response.redirect_chain == [("/?mode=batch", 302)]  # Post/Redirect/Get: back to the form
    html = response.content.decode()
    assert "File 2: This photo has more than 40,000,000 pixels: choose a smaller one, or scale it down first." in html
    assert Batch.objects.count() == 0
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "uploads"
    assert not [path for path in folder.rglob("*") if path.is_file()]


def test_batches_page_rows_poll_while_active_and_stop_once_done(member_client, team):
    batch = batch_create(team=team, body={"inputs": ["https://shop.example/a.jpg"], "options": OPTIONS})
    page = member_client.get(reverse("generator:batches")).content.decode()
    assert f'id="batch-{batch.uuid}"' in page
    assert "1 waiting" in page
    row_url = reverse("generator:batch-detail", args=[batch.uuid]) + "?row=1"
    response = member_client.get(row_url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'aria-valuenow="0"' in response.content.decode()
    batches_dispatch()
    Generation.objects.filter(team=team).update(status="DONE", stage="done")
    batches_dispatch()
    response = member_client.get(row_url, HTTP_HX_REQUEST="true")
    assert response.status_code == 286  # finished: htmx stops polling
    html = response.content.decode()
    assert 'aria-valuenow="1"' in html
    assert "hx-trigger" not in html
    assert 'data-state="done"' in html


def test_cancel_and_retry_failed_from_the_page(member_client, team):
    batch = batch_create(
        team=team, body={"inputs": ["https://shop.example/a.jpg", "https://shop.example/b.jpg"], "options": OPTIONS}
    )
    response = member_client.post(reverse("generator:batch-cancel", args=[batch.uuid]))
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == "cancelled"
    other = batch_create(team=team, body={"inputs": ["https://shop.example/c.jpg"], "options": OPTIONS})
    batches_dispatch()
    Generation.objects.filter(team=team).update(status="ERROR", stage="error")
    batches_dispatch()
    response = member_client.post(reverse("generator:batch-retry", args=[other.uuid]))
    retry = Batch.objects.order_by("-pk").first()
    assert response.status_code == 302
    assert response["Location"] == reverse("generator:batch-detail", args=[retry.uuid])
    assert retry.source == {"type": "retry", "retry_of": other.pk}


def test_downloads_gallery_filter_and_job_page_show_the_batch(member_client, team):
    batch = batch_create(team=team, body={"inputs": ["https://shop.example/a.jpg"], "options": OPTIONS})
    loose = batch_create(team=team, body={"inputs": ["https://shop.example/b.jpg"], "options": OPTIONS})
    batches_dispatch()
    csv_response = member_client.get(reverse("generator:batch-results", args=[batch.uuid]))
    assert csv_response.status_code == 200
    assert b"https://shop.example/a.jpg,PROCESSING" in b"".join(csv_response.streaming_content)
    zip_response = member_client.get(reverse("generator:batch-archive", args=[batch.uuid]))
    assert zip_response["Content-Type"] == "application/zip"
    item = batch.items.get()
    Generation.objects.filter(team=team).update(status="DONE", stage="done")
    gallery = member_client.get(reverse("generator:gallery") + f"?batch={batch.pk}").content.decode()
    assert str(item.generation.uuid) in gallery
    assert str(loose.items.get().generation.uuid) not in gallery
    job = member_client.get(reverse("generator:job-detail", args=[item.generation.uuid])).content.decode()
    assert f"Batch #{batch.pk}</a> · video 1 of 1 (a.mp4)" in job


def test_another_team_s_batch_is_a_404_on_every_page(client, team):
    batch = batch_create(team=team, body={"inputs": ["https://shop.example/a.jpg"], "options": OPTIONS})
    stranger_team = make_team("Other", slug="other")
    stranger = make_member(stranger_team, make_user("stranger@example.com"))
    client.force_login(stranger.user)
    for name in ("batch-detail", "batch-results", "batch-archive"):
        assert client.get(reverse(f"generator:{name}", args=[batch.uuid])).status_code == 404
    for name in ("batch-cancel", "batch-retry"):
        assert client.post(reverse(f"generator:{name}", args=[batch.uuid])).status_code == 404
    assert str(batch.uuid) not in client.get(reverse("generator:batches")).content.decode()
    batch.refresh_from_db()
    assert batch.state == "running"
    assert client.get(reverse("generator:batch-cancel", args=[batch.uuid])).status_code == 405


def test_an_errored_batch_form_comes_back_at_a_get_with_its_values_and_a_lapsed_session_keeps_it(member_client, team):
    text = "https://shop.example/a.jpg\nftp://shop.example/b.jpg"
    member_client.post(reverse("generator:batch-new"), batch_form(batch_source="list", url_list=text))
    for _reload in range(2):  # a reload is a GET: nothing is resent, the values and errors stay
        page = member_client.get("/?mode=batch").content.decode()
        assert "ftp://shop.example/b.jpg" in page
        assert "Entry 2: only http and https URLs are allowed" in page
    assert Batch.objects.count() == 0

    # Signed out: the POST goes through the login back to the batch form (not the POST-only URL).
    refused = Client().post(reverse("generator:batch-new"), batch_form(batch_source="list", url_list=text))
    assert refused["Location"] == reverse("login") + "?next=/%3Fmode%3Dbatch"
