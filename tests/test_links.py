from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.utils import timezone

from generator.models import Generation, Storage
from generator.services import links
from generator.services.links import link_expires_at, link_is_expired, link_url
from tests.factories import make_team

DONE_AT = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes with a position-dependent pattern


@pytest.fixture
def clock(monkeypatch):
    """A frozen clock for the link checks."""
    state = {"now": DONE_AT}
    monkeypatch.setattr(timezone, "now", lambda: state["now"])
    return state


def make_local_output(settings) -> Generation:
    """A finished job whose video went to out/v.mp4 in a local storage "shop" of a new team."""
    team = make_team()
    storage = Storage.objects.create(team=team, name="shop", type="local", parameters={"path": ""})
    target = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "out" / "v.mp4"
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    return make_done(team, settings, temporary=False, output_storage=storage, output_key="out/v.mp4")


def make_done(team, settings, *, temporary=True, **fields) -> Generation:
    generation = Generation.objects.create(
        team=team,
        request={},
        status="DONE",
        stage="done",
        completed_at=DONE_AT,
        is_temporary=temporary,
        **fields,
    )
    if temporary:
        generation.video_name = f"videos/{team.slug}/{generation.uuid}.mp4"
    generation.poster_name = f"posters/{generation.uuid}.jpg"
    generation.save()
    for name, data in (
        (generation.video_name, PAYLOAD),
        (generation.poster_name, b"\xff\xd8poster"),
    ):
        if name:
            path = settings.MEDIA_ROOT / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return generation


def path_of(url: str) -> str:
    assert url.startswith("http://testserver/v/")
    return url.removeprefix("http://testserver")


@pytest.mark.django_db
def test_temporary_link_is_served_until_24_h_after_completion_then_410(client, settings, clock):
    generation = make_done(make_team(), settings)
    url = path_of(link_url(generation))
    clock["now"] = DONE_AT + timedelta(seconds=86_399)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PAYLOAD
    assert response["Content-Type"] == "video/mp4"
    assert response["Accept-Ranges"] == "bytes"
    clock["now"] = DONE_AT + timedelta(seconds=86_401)
    assert client.get(url).status_code == 410
    assert link_is_expired(generation)
    assert link_expires_at(generation) == DONE_AT + timedelta(seconds=86_400)


@pytest.mark.django_db
def test_a_fresh_token_does_not_extend_a_temporary_video(client, settings, clock):
    generation = make_done(make_team(), settings)
    clock["now"] = DONE_AT + timedelta(seconds=86_401)
    assert client.get(path_of(link_url(generation))).status_code == 410


@pytest.mark.django_db
def test_tampered_unknown_and_deleted_links_are_404(client, settings, clock):
    generation = make_done(make_team(), settings)
    url = path_of(link_url(generation))
    token = url.removeprefix("/v/")
    assert client.get("/v/" + token[:-2] + ("AA" if not token.endswith("AA") else "BB")).status_code == 404
    assert client.get("/v/" + token.replace(":video:", ":poster:")).status_code == 404
    assert client.get("/v/not-a-token").status_code == 404
    forged = signing.TimestampSigner(salt="another.salt").sign(f"{generation.uuid}:video")
    assert client.get(f"/v/{forged}").status_code == 404
    unknown = signing.TimestampSigner(salt=links.LINK_SALT).sign("8d6f1d5e-0000-4000-8000-000000000000:video")
    assert client.get(f"/v/{unknown}").status_code == 404
    assert client.get(url).status_code == 200
    Generation.objects.filter(pk=generation.pk).update(deleted_at=timezone.now())
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_purged_video_is_410_but_its_poster_still_serves(client, settings, clock):
    generation = make_done(make_team(), settings)
    video, poster = (
        path_of(link_url(generation)),
        path_of(link_url(generation, file="poster")),
    )
    Generation.objects.filter(pk=generation.pk).update(purged_at=timezone.now())
    (settings.MEDIA_ROOT / generation.video_name).unlink()
    assert client.get(video).status_code == 410
    response = client.get(poster)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == b"\xff\xd8poster"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10_000, 10_239),
        ("bytes=-40", 10_200, 10_239),
        ("bytes=0-0", 0, 0),
        ("bytes=10200-99999", 10_200, 10_239),
    ],
)
def test_range_requests_answer_206_with_exactly_those_bytes(client, settings, clock, header, first, last):
    generation = make_done(make_team(), settings)
    response = client.get(path_of(link_url(generation)), headers={"Range": header})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(PAYLOAD)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert b"".join(response.streaming_content) == PAYLOAD[first : last + 1]


@pytest.mark.django_db
def test_unsatisfiable_range_is_416(client, settings, clock):
    generation = make_done(make_team(), settings)
    response = client.get(path_of(link_url(generation)), headers={"Range": "bytes=20000-"})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(PAYLOAD)}"


@pytest.mark.django_db
def test_link_urls_exist_only_for_finished_live_videos(settings):
    team = make_team()
    queued = Generation.objects.create(team=team, request={})
    assert link_url(queued) is None
    done = make_done(team, settings)
    assert link_url(done).startswith("http://testserver/v/")
    done.deleted_at = timezone.now()
    assert link_url(done) is None


@pytest.mark.django_db
def test_local_storage_output_link_lives_24_h_from_minting(client, settings, clock):
    generation = make_local_output(settings)
    minted_at = DONE_AT + timedelta(days=3)
    clock["now"] = minted_at
    url = path_of(link_url(generation))
    assert link_expires_at(generation) == minted_at + timedelta(seconds=86_400)
    clock["now"] = minted_at + timedelta(seconds=86_399)
    response = client.get(url, headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == PAYLOAD[:10]
    clock["now"] = minted_at + timedelta(seconds=86_401)
    assert client.get(url).status_code == 410
    (settings.GENERATOR_LOCAL_STORAGE_ROOT / generation.team.slug / "out" / "v.mp4").unlink()
    clock["now"] = minted_at
    assert client.get(url).status_code == 410


@pytest.mark.django_db
def test_cloud_output_link_redirects_to_a_five_minute_presigned_url(client, settings, clock, monkeypatch):
    from generator.storage import registry
    from generator.storage.local import LocalConnector

    asked = {}

    class PresigningConnector(LocalConnector):
        def download_url(self, key: str, *, expires_s: int = 300) -> str | None:
            asked["key"], asked["expires_s"] = key, expires_s
            return f"https://bucket.example/{key}?X-Amz-Expires={expires_s}"

    monkeypatch.setattr(
        registry,
        "get_connector",
        lambda storage: PresigningConnector(parameters={}, secrets={}, team_slug="t"),
    )
    team = make_team()
    storage = Storage.objects.create(team=team, name="s3", type="local", parameters={})
    generation = make_done(
        team,
        settings,
        temporary=False,
        output_storage=storage,
        output_key="videos/a.mp4",
    )
    response = client.get(path_of(link_url(generation)))
    assert response.status_code == 302
    assert response["Location"] == "https://bucket.example/videos/a.mp4?X-Amz-Expires=300"
    assert asked == {"key": "videos/a.mp4", "expires_s": 300}


@pytest.mark.django_db
def test_disconnected_output_storage_link_is_410_and_no_new_link_is_offered(client, settings, clock):
    generation = make_local_output(settings)
    storage = generation.output_storage
    assert links.link_is_available(generation)
    shown = path_of(link_url(generation))
    poster = path_of(link_url(generation, file="poster"))
    storage.delete()  # disconnecting leaves the customer's object but we can no longer reach it
    generation.refresh_from_db()
    assert generation.output_storage_id is None
    assert not links.link_is_available(generation)
    assert link_url(generation) is None
    assert link_expires_at(generation) is None
    assert client.get(shown).status_code == 410
    assert client.get(poster).status_code == 200
    temporary = make_done(generation.team, settings)
    assert links.link_is_available(temporary)
    temporary.deleted_at = timezone.now()
    assert not links.link_is_available(temporary)


@pytest.fixture
def opened_handles(monkeypatch):
    """Every file handle the /v/ view opens, to check that each one is closed."""
    from generator.views import bearer_links

    handles = []
    real = bearer_links.link_file

    def recording(resolved):
        found = real(resolved)
        if found.handle is not None:
            handles.append(found.handle)
        return found

    monkeypatch.setattr(bearer_links, "link_file", recording)
    return handles


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("bytes=0-" + "9" * 5000, 200),  # more digits than Python turns into an int
        ("bytes=" + "1" * 5000 + "-", 200),
        ("bytes=-" + "7" * 5000, 200),
        ("bytes=0-" + "9" * 16, 200),  # over the 15-digit bound: malformed, sent whole
        ("bytes=" + "9" * 15 + "-", 416),  # within the bound but past the end
        ("bytes=0-" + "9" * 15, 206),  # a huge last byte is clipped to the file
        ("bytes=abc", 200),
        ("bytes=1-2,3-4", 200),
    ],
)
def test_range_with_huge_or_unparseable_numbers_is_200_or_416_and_closes_the_file(
    client, settings, clock, opened_handles, header, status
):
    generation = make_done(make_team(), settings)
    response = client.get(path_of(link_url(generation)), headers={"Range": header})
    assert response.status_code == status
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if status == 200:
        assert body == PAYLOAD
    elif status == 206:
        assert body == PAYLOAD
        assert response["Content-Range"] == f"bytes 0-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"
    response.close()
    assert len(opened_handles) == 1
    assert all(handle.closed for handle in opened_handles)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "head"])
def test_a_response_closed_before_it_is_read_closes_its_file(client, settings, clock, opened_handles, method):
    generation = make_done(make_team(), settings)
    response = getattr(client, method)(path_of(link_url(generation)), headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    response.close()  # what the server does when the client hangs up (or for HEAD) without reading
    assert len(opened_handles) == 1
    assert all(handle.closed for handle in opened_handles)


@pytest.mark.django_db
def test_a_downloaded_video_and_poster_are_named_after_the_photo_not_the_job_id(client, settings, clock):
    generation = make_done(make_team(), settings, duration=5)
    generation.request = {"input": "https://shop.example/media/Blue%20Shirt%20(front).PNG", "options": {}}
    generation.input_object = {"width": 1200, "height": 800}
    generation.save()
    video = client.get(path_of(link_url(generation)))
    assert video["Content-Disposition"] == 'inline; filename="blue-shirt-front-landscape-5s.mp4"'
    poster = client.get(path_of(link_url(generation, file="poster")))
    assert poster["Content-Disposition"] == 'inline; filename="blue-shirt-front-landscape-5s.jpg"'
    # Quotes and semicolons meant to break out of the header are dropped from the name.
    generation.request = {"input": "https://shop.example/%22%3B%20x%3D.png", "options": {"aspect_ratio": "9:16"}}
    generation.save()
    assert client.get(path_of(link_url(generation)))["Content-Disposition"] == 'inline; filename="x-9x16-5s.mp4"'
