"""Storages page against moto's S3 server on loopback: connect through the form, test, browse, thumbnails."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image

from generator.models import Membership, Storage
from tests.factories import make_member, make_team, make_user
from tests.harness import browse, thumbnail

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _allow_emulator(settings, s3_server):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [s3_server.host_port]


@pytest.fixture
def owner_client(client):
    team = make_team("Acme", slug="acme")
    client.force_login(make_member(team, make_user(), role=Membership.Role.OWNER).user)
    client.team = team
    return client


def s3_form(server, bucket, **overrides) -> dict:
    data = {
        "name": "shop",
        "type": "s3",
        "bucket": bucket,
        "path": "catalogue",
        "region": "us-east-1",
        "endpoint_url": server.endpoint_url,
        "access_key": server.access_key,
        "secret_access_key": server.secret_key,
    }
    data.update(overrides)
    return data


def test_connect_s3_through_the_form_then_browse_with_thumbnails(owner_client, s3_server, s3_bucket):
    response = owner_client.post(reverse("generator:storage-connect"), s3_form(s3_server, s3_bucket))
    assert response.status_code == 302, response.content.decode()[-3000:]
    storage = Storage.objects.get(team=owner_client.team, name="shop")
    assert storage.parameters["bucket"] == s3_bucket
    assert s3_server.secret_key not in owner_client.get(reverse("generator:storages")).content.decode()

    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (20, 120, 200)).save(buffer, "JPEG")
    s3_server.client().put_object(Bucket=s3_bucket, Key="catalogue/shoes/blue.jpg", Body=buffer.getvalue())

    check = owner_client.post(reverse("generator:storage-check", args=[storage.pk]), HTTP_HX_REQUEST="true")
    assert "Connection works." in check.content.decode()
    top = browse(owner_client, storage, htmx=False, pick="1")
    assert "shoes" in top
    inner = browse(owner_client, storage, folder="shoes/", pick="1")
    assert 'data-pick="storage://shop/shoes/blue.jpg"' in inner
    thumb = thumbnail(owner_client, storage, "shoes/blue.jpg")
    assert thumb.status_code == 200
    assert Image.open(io.BytesIO(thumb.content)).size == (240, 180)


def test_wrong_s3_secret_is_refused_on_the_form_kept_once_and_never_stored_in_clear(owner_client, s3_server, s3_bucket):
    from django.contrib.sessions.models import Session

    response = owner_client.post(
        reverse("generator:storage-connect"),
        s3_form(s3_server, s3_bucket, secret_access_key="wrong-secret-value-123"),
    )
    assert response.status_code == 302
    # Between the POST and the page, the typed secret waits encrypted in the session.
    assert all(b"wrong-secret-value-123" not in s.session_data.encode() for s in Session.objects.all())
    assert all("wrong-secret-value-123" not in str(s.get_decoded()) for s in Session.objects.all())
    shown = owner_client.get(response["Location"])
    assert shown["Cache-Control"] == "no-store"
    html = shown.content.decode()
    assert "We could not connect with these details. The storage answered:" in html
    assert "SignatureDoesNotMatch" in html
    # The user's own secret comes back once in its password field, so a typo in the bucket does not cost it.
    assert 'type="password" name="secret_access_key" value="wrong-secret-value-123"' in html
    again = owner_client.get(response["Location"]).content.decode()
    assert "wrong-secret-value-123" not in again
    assert 'value="' + s3_bucket + '"' in again  # the other fields stay
    assert not Storage.objects.filter(team=owner_client.team).exists()
