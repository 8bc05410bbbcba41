"""Dashboard pages and fragments: status, scoping to the current team, htmx fragments, POST-only writes."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from generator.models import ApiKey, CreditLedger, Generation, Invite, Membership, Storage
from generator.services.billing import credits_hold
from generator.services.teams import invite_create
from generator.services.webhooks import webhook_secret
from tests.factories import FORM_OPTIONS, PASSWORD, make_api_key, make_member, make_team, make_user, png_header_only
from tests.harness import browse, thumbnail

pytestmark = pytest.mark.django_db

Status, Stage = Generation.Status, Generation.Stage


def make_generation(
    team,
    user=None,
    *,
    status=Status.DONE,
    stage=None,
    prompt="slow zoom in",
    hold=False,
    **fields,
):
    defaults = {
        Status.DONE: Stage.DONE,
        Status.ERROR: Stage.ERROR,
        Status.CANCELLED: Stage.CANCELLED,
        Status.PROCESSING: Stage.QUEUED,
    }
    now = timezone.now()
    generation = Generation.objects.create(
        team=team,
        created_by=user,
        request={
            "input": "https://shop.example/shoe.jpg",
            "options": {"prompt": prompt, "duration": 5, "guidance_scale": 0.5},
        },
        status=status,
        stage=stage or defaults[status],
        progress=100 if status == Status.DONE else fields.pop("progress", 0),
        duration=5,
        cost=35,
        completed_at=fields.pop("completed_at", now if status != Status.PROCESSING else None),
        # Made a while ago, so it does not count toward the 1-per-second rate window.
        created_at=fields.pop("created_at", now - timedelta(minutes=2)),
        **fields,
    )
    if hold:
        team.refresh_from_db()
        credits_hold(team=team, generation=generation, user=user)
    return generation


@pytest.fixture
def owner(team):
    return make_member(
        team,
        make_user("owner@example.com", name="Olivia Owner"),
        role=Membership.Role.OWNER,
    )


@pytest.fixture
def other_team():
    team = make_team("Other", credits=500, slug="other")
    make_member(team, make_user("stranger@example.com"), role=Membership.Role.OWNER)
    return team


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner.user)
    return client


def local_storage(team, name="photos", path="photos"):
    from generator.services.storage_connections import storage_create

    return storage_create(team=team, user=None, name=name, type="local", parameters={"path": path})


def png_bytes(size=(400, 320), color=(200, 60, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


PAGES = ["home", "jobs", "gallery", "storages", "credits", "keys", "team"]


# --- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_every_page_redirects_anonymous_users_to_login(client, name):
    response = client.get(reverse(f"generator:{name}"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_for_a_member_with_header_balance_and_htmx(member_client, team, name):
    response = member_client.get(reverse(f"generator:{name}"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert html.count("hx-headers") == 1
    assert "/static/django_htmx/htmx" in html
    # Every script and stylesheet is ours: no src/href to another host (a CDN).
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html, re.I)
    assert f'<span class="balance-num">{team.balance}</span>' in html


def test_user_without_team_sees_an_explanation_not_an_error(client):
    client.force_login(make_user("lonely@example.com"))
    response = client.get(reverse("generator:home"))
    assert response.status_code == 403
    assert "not in a team" in response.content.decode()


MUTATING = [
    ("generator:job-cancel", {"pk": uuid.uuid4()}),
    ("generator:job-retry", {"pk": uuid.uuid4()}),
    ("generator:video-delete", {"pk": uuid.uuid4()}),
    ("generator:storage-connect", {}),
    ("generator:storage-check", {"pk": 1}),
    ("generator:storage-disconnect", {"pk": 1}),
    ("generator:engine-connect", {}),
    ("generator:engine-test", {"pk": 1}),
    ("generator:engine-default", {}),
    ("generator:engine-disconnect", {"pk": 1}),
    ("generator:key-create", {}),
    ("generator:key-revoke", {"pk": 1}),
    ("generator:team-invite", {}),
    ("generator:member-update", {"pk": 1}),
    ("generator:member-remove", {"pk": 1}),
    ("generator:team-switch", {}),
    ("generator:team-webhook", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), MUTATING)
def test_get_to_a_mutating_url_is_405(owner_client, name, kwargs):
    assert owner_client.get(reverse(name, kwargs=kwargs)).status_code == 405


# --- jobs -------------------------------------------------------------------------------------


def test_jobs_fragment_for_htmx_has_no_html_shell(member_client, team, member):
    make_generation(team, member.user, status=Status.PROCESSING, stage=Stage.RENDERING, progress=42)
    response = member_client.get(reverse("generator:jobs"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert 'id="job-list"' in html
    assert "Rendering 42%" in html


def test_active_job_row_polls_every_second_and_finished_row_does_not(member_client, team, member):
    active = make_generation(team, member.user, status=Status.PROCESSING, stage=Stage.FETCHING, progress=5)
    done = make_generation(team, member.user)
    html = member_client.get(reverse("generator:jobs")).content.decode()
    active_row = html.split(f'id="job-{active.uuid}"')[1].split(">")[0]
    done_row = html.split(f'id="job-{done.uuid}"')[1].split(">")[0]
    assert 'hx-trigger="every 1s"' in active_row
    assert "hx-trigger" not in done_row


def test_job_row_fragment_polls_with_200_while_active_and_answers_286_when_finished(member_client, team, member):
    generation = make_generation(team, member.user, status=Status.PROCESSING, stage=Stage.RENDERING, progress=30)
    url = reverse("generator:job-detail", args=[generation.uuid])
    active = member_client.get(url, HTTP_HX_REQUEST="true")
    assert active.status_code == 200
    assert 'aria-valuenow="30"' in active.content.decode()
    assert "<html" not in active.content.decode()

    Generation.objects.filter(pk=generation.pk).update(status=Status.DONE, stage=Stage.DONE, progress=100)
    finished = member_client.get(url, HTTP_HX_REQUEST="true")
    assert finished.status_code == 286
    html = finished.content.decode()
    assert "hx-trigger" not in html
    assert 'aria-valuenow="100"' in html
    assert f'id="balance" hx-swap-oob="true"><span class="balance-num">{team.balance}</span>' in html


def test_job_detail_page_shows_the_request(member_client, team, member):
    generation = make_generation(team, member.user, prompt="camera zoom out, glitter")
    response = member_client.get(reverse("generator:job-detail", args=[generation.uuid]))
    assert response.status_code == 200
    assert "camera zoom out, glitter" in response.content.decode()


def test_failed_refunded_job_shows_reason_and_not_charged(member_client, team, member):
    from generator.services.billing import credits_refund

    generation = make_generation(
        team,
        member.user,
        status=Status.ERROR,
        hold=True,
        errors=[
            {
                "error": "the image is smaller than 300 px",
                "created_at": "2026-01-01T00:00:00+00:00",
            }
        ],
    )
    credits_refund(generation=generation, reason="failed")
    html = member_client.get(reverse("generator:jobs")).content.decode()
    assert "the image is smaller than 300 px" in html
    assert "not charged" in html


def test_cancel_a_queued_job_refunds_it(member_client, team, member):
    generation = make_generation(team, member.user, status=Status.PROCESSING, hold=True)
    team.refresh_from_db()
    before = team.balance
    response = member_client.post(reverse("generator:job-cancel", args=[generation.uuid]))
    assert response.status_code == 302
    generation.refresh_from_db()
    team.refresh_from_db()
    assert generation.status == Status.CANCELLED
    assert team.balance == before + 35


def test_cancel_a_started_job_explains_it_cannot(member_client, team, member):
    generation = make_generation(team, member.user, status=Status.PROCESSING, stage=Stage.RENDERING, hold=True)
    response = member_client.post(reverse("generator:job-cancel", args=[generation.uuid]), follow=True)
    assert "Could not cancel" in response.content.decode()
    generation.refresh_from_db()
    assert generation.status == Status.PROCESSING


def test_retry_creates_a_new_charged_job_with_the_same_request(member_client, team, member):
    generation = make_generation(team, member.user, status=Status.ERROR)
    response = member_client.post(reverse("generator:job-retry", args=[generation.uuid]))
    assert response.status_code == 302
    newest = Generation.objects.filter(team=team).order_by("-pk").first()
    assert newest.pk != generation.pk
    assert newest.request == generation.request
    assert CreditLedger.objects.filter(generation=newest, kind=CreditLedger.Kind.HOLD, amount=-35).exists()


# --- generate ---------------------------------------------------------------------------------


def named_upload(data: bytes, name: str) -> io.BytesIO:
    """A file as a browser uploads it: bytes with a file name."""
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def form_data(**overrides) -> dict:
    return {"source": "url", "url": "https://shop.example/shoe.jpg", **FORM_OPTIONS, "negative_prompt": "", **overrides}


def test_generate_form_shows_costs_next_to_the_balance(member_client, team):
    html = member_client.get(reverse("generator:home")).content.decode()
    assert "35 credits" in html
    assert "70 credits" in html
    assert 'enctype="multipart/form-data"' in html
    assert 'action="/generate/"' in html


def test_generate_accepts_a_url_and_charges_through_the_service(member_client, team, member):
    response = member_client.post(reverse("generator:generate"), form_data(duration="10"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("generator:jobs"))
    generation = Generation.objects.get(team=team)
    assert generation.created_by == member.user
    assert generation.request["input"] == "https://shop.example/shoe.jpg"
    assert generation.request["options"]["duration"] == 10
    team.refresh_from_db()
    assert team.balance == 1000 - 70


def test_generate_url_answers_get_with_the_form(member_client):
    response = member_client.get(reverse("generator:generate"))
    assert response.status_code == 200
    assert 'id="generate-form"' in response.content.decode()


def test_a_post_after_the_session_ended_keeps_the_form_through_the_login(client, team, member):
    response = client.post(reverse("generator:generate"), form_data(prompt="kept through the login", duration="10"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=/"
    assert not Generation.objects.filter(team=team).exists()
    client.force_login(member.user)  # logging in keeps the session's data (Django cycles the key)
    html = client.get(reverse("generator:home")).content.decode()
    assert "Your session had ended, so nothing was sent" in html
    assert "kept through the login</textarea>" in html
    assert 'value="10" id="id_duration_1" data-price="70" checked' in html
    assert "Your session had ended" not in client.get(reverse("generator:home")).content.decode()  # said once


def test_the_same_form_sent_twice_starts_one_job_and_answers_with_it(member_client, team):
    first = member_client.post(reverse("generator:generate"), form_data(token="tok-1"))
    second = member_client.post(reverse("generator:generate"), form_data(token="tok-1"))
    assert first.status_code == second.status_code == 302
    generation = Generation.objects.get(team=team)
    assert first["Location"] == second["Location"] == reverse("generator:jobs") + f"#job-{generation.uuid}"
    team.refresh_from_db()
    assert team.balance == 1000 - 35
    html = member_client.get(second["Location"]).content.decode()
    assert "This form was already sent: here is the video it started (charged once)." in html


def test_generate_auto_prompt_with_guidelines(member_client, team):
    response = member_client.post(
        reverse("generator:generate"),
        form_data(prompt_mode="auto", prompt="", guidelines="calm and premium"),
    )
    assert response.status_code == 302
    assert Generation.objects.get(team=team).request["options"]["prompt"] == {
        "generate": True,
        "guidelines": "calm and premium",
    }


def refused_form_page(client, data, **extra) -> str:
    """Post the Generate form, expect the redirect back to the form (Post/Redirect/Get), return that page."""
    response = client.post(reverse("generator:generate"), data, **extra)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == reverse("generator:home")
    return client.get(response["Location"]).content.decode()


def test_generate_says_the_validators_verdicts_in_plain_words_next_to_the_fields(member_client, team):
    html = refused_form_page(member_client, form_data(url="ftp://shop.example/a.jpg", prompt="ab"))
    assert "Enter a web link that starts with https:// (or http://), or upload the photo." in html
    assert "Enter a prompt of at least 3 characters." in html
    assert 'id="id_url_error"' in html
    assert 'id="id_prompt_error"' in html
    assert 'aria-describedby="id_prompt_helptext id_prompt_error"' in html
    assert "There are 2 problems" in html  # the summary at the top
    assert 'value="ftp://shop.example/a.jpg"' in html  # what was typed is kept
    assert not Generation.objects.filter(team=team).exists()


def test_generate_with_unknown_output_storage_is_an_inline_error(member_client, team):
    html = refused_form_page(member_client, form_data(output_mode="storage", output_storage="nope", output_path="out/"))
    assert 'id="id_output_path_error"' in html
    assert "There is no storage called “nope” in this team" in html
    assert not Generation.objects.filter(team=team).exists()


def test_generate_refuses_when_credits_are_short_and_says_nothing_was_charged(client):
    poor = make_team("Poor", credits=20, slug="poor")
    membership = make_member(poor)
    client.force_login(membership.user)
    html = refused_form_page(client, form_data())
    assert "The team has 20 credits left; this video costs 35." in html
    assert "Nothing was charged" in html
    assert not Generation.objects.filter(team=poor).exists()


def test_generate_refuses_over_the_rate_limit_with_when_to_retry(member_client, team):
    assert member_client.post(reverse("generator:generate"), form_data(token="first")).status_code == 302
    html = refused_form_page(member_client, form_data(token="second"))
    assert "Try again in" in html
    assert "1 per second" in html
    assert Generation.objects.filter(team=team).count() == 1


def test_upload_is_kept_in_the_team_uploads_storage_and_submitted_as_storage_input(member_client, team, settings):
    upload = named_upload(png_bytes(), "shoe.png")
    response = member_client.post(
        reverse("generator:generate"),
        {**form_data(source="upload", url=""), "upload": upload},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    generation = Generation.objects.get(team=team)
    assert generation.request["input"].startswith("storage://uploads/")
    assert generation.request["input"].endswith(".png")
    storage = Storage.objects.get(team=team, name="uploads")
    key = generation.request["input"].removeprefix("storage://uploads/")
    stored = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / storage.parameters["path"] / key
    assert stored.read_bytes().startswith(b"\x89PNG")


def test_upload_of_a_non_image_is_refused_inline(member_client, team):
    upload = named_upload(b"<html>not an image</html>", "shoe.jpg")
    html = refused_form_page(member_client, {**form_data(source="upload"), "upload": upload})
    assert "This file is not a photo we can use: choose a JPEG, PNG, WEBP or HEIC image." in html
    assert "Choose the photo again" in html
    assert not Generation.objects.filter(team=team).exists()


# --- gallery ----------------------------------------------------------------------------------


def test_gallery_shows_who_when_prompt_duration_cost_and_time_left(member_client, team, member, owner):
    mine = make_generation(team, member.user, prompt="orbit with sparkle", poster_name="posters/x.jpg")
    theirs = make_generation(team, owner.user, prompt="pan left slowly")
    html = member_client.get(reverse("generator:gallery")).content.decode()
    assert "orbit with sparkle" in html
    assert "pan left slowly" in html
    assert "Mia Member" in html
    assert "Olivia Owner" in html
    assert "35 credits" in html
    assert "5 s" in html
    assert "23 h 59 min left" in html or "23 h 58 min left" in html
    assert f'id="video-{mine.uuid}"' in html
    assert f'id="video-{theirs.uuid}"' in html
    assert 'data-video="http://testserver/v/' in html


def test_gallery_greys_expired_items_without_a_player(member_client, team, member):
    expired = make_generation(team, member.user, completed_at=timezone.now() - timedelta(hours=25))
    html = member_client.get(reverse("generator:gallery")).content.decode()
    card = (
        html.split(f'id="video-{expired.uuid}"')[0].rsplit("<article", 1)[1]
        + html.split(f'id="video-{expired.uuid}"')[1].split("</article>")[0]
    )
    assert "tile expired" in card
    assert "data-video" not in card
    assert "Download" not in card


def test_gallery_filters_by_status_member_and_date(member_client, team, member, owner):
    old = make_generation(team, member.user, prompt="old one")
    Generation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    make_generation(team, member.user, prompt="failed one", status=Status.ERROR)
    make_generation(team, owner.user, prompt="owner one")
    url = reverse("generator:gallery")

    by_status = member_client.get(url, {"status": "ERROR"}).content.decode()
    assert "failed one" in by_status
    assert "owner one" not in by_status

    by_member = member_client.get(url, {"member": owner.user_id}).content.decode()
    assert "owner one" in by_member
    assert "failed one" not in by_member

    since = (timezone.localdate() - timedelta(days=2)).isoformat()
    by_date = member_client.get(url, {"from": since}).content.decode()
    assert "old one" not in by_date
    assert "owner one" in by_date


def test_gallery_names_each_videos_photo_opens_one_video_and_says_when_the_dates_are_crossed(
    member_client, team, member
):
    shown = make_generation(team, member.user, prompt="the one", poster_name="posters/x.jpg")
    make_generation(team, member.user, prompt="another one")
    url = reverse("generator:gallery")
    html = member_client.get(url).content.decode()
    assert html.count("Photo:</span> shoe.<wbr>jpg") == 2  # each tile names the photo it animates
    assert 'download="shoe-video-5s.mp4"' in html

    one = member_client.get(url, {"video": str(shown.uuid)}).content.decode()
    assert "the one" in one
    assert "another one" not in one
    assert "<video controls" in one  # opened: the player is there, no click needed
    assert "Show all videos" in one

    crossed = member_client.get(url, {"from": "2026-05-12", "to": "2026-05-03"}).content.decode()
    assert "The From date (12 May 2026) is after the To date (3 May 2026)" in crossed
    assert "from=2026-05-03&amp;to=2026-05-12" in crossed  # the swap link
    assert (
        "is after the To date"
        not in member_client.get(url, {"from": "2026-05-03", "to": "2026-05-12"}).content.decode()
    )


def test_job_rows_name_the_photo_and_offer_make_again_at_todays_price_or_edit_and_retry(member_client, team, member):
    done = make_generation(team, member.user)
    Generation.objects.filter(pk=done.pk).update(cost=0)  # what it cost then is not what it costs now
    failed = make_generation(team, member.user, status=Status.ERROR)
    html = member_client.get(reverse("generator:jobs")).content.decode()
    assert html.count("Photo:</span> shoe.<wbr>jpg") == 2
    assert "Make again (35 credits)" in html
    assert f'href="/?from={failed.uuid}"' in html
    assert "Edit and retry" in html
    assert f"/gallery/?video={done.uuid}#video-{done.uuid}" in html


def test_gallery_htmx_request_returns_only_the_results(member_client, team, member):
    make_generation(team, member.user)
    html = member_client.get(reverse("generator:gallery"), {"status": "DONE"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="gallery-results"')


def test_gallery_paginates(member_client, team, member):
    for i in range(30):
        make_generation(team, member.user, prompt=f"video number {i:02d}")
    first = member_client.get(reverse("generator:gallery")).content.decode()
    second = member_client.get(reverse("generator:gallery"), {"page": 2}).content.decode()
    assert "video number 29" in first
    assert "video number 05" not in first
    assert "video number 05" in second
    assert "Page 2 of 2" in second


def test_gallery_query_count_is_constant_per_page(member_client, team, member, owner, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_generation(team, member.user)
    with CaptureQueriesContext(connection) as small:
        member_client.get(reverse("generator:gallery"))
    for i in range(60):
        make_generation(team, owner.user if i % 2 else member.user, poster_name=f"posters/{i}.jpg")
    assert len(small) <= 9  # session, user, membership, teams for the switcher, count, page, members, engines
    with django_assert_num_queries(len(small)):
        response = member_client.get(reverse("generator:gallery"))
    assert response.content.decode().count('<article class="tile') == 24


def test_gallery_does_not_list_another_teams_videos(member_client, other_team):
    foreign = make_generation(other_team, prompt="secret foreign video")
    html = member_client.get(reverse("generator:gallery")).content.decode()
    assert "secret foreign video" not in html
    assert str(foreign.uuid) not in html


def test_poster_is_served_to_the_team_only(member_client, team, member, other_team):
    default_storage.save("posters/p1.jpg", io.BytesIO(b"\xff\xd8\xff fake jpeg"))
    mine = make_generation(team, member.user, poster_name="posters/p1.jpg")
    foreign = make_generation(other_team, poster_name="posters/p1.jpg")
    response = member_client.get(reverse("generator:poster", args=[mine.uuid]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\xff\xd8")
    assert member_client.get(reverse("generator:poster", args=[foreign.uuid])).status_code == 404


def test_delete_video_by_creator_removes_it_from_the_gallery(member_client, team, member):
    generation = make_generation(team, member.user, prompt="to be deleted")
    response = member_client.post(reverse("generator:video-delete", args=[generation.uuid]))
    assert response.status_code == 302
    generation.refresh_from_db()
    assert generation.deleted_at is not None
    assert "to be deleted" not in member_client.get(reverse("generator:gallery")).content.decode()


def test_member_cannot_delete_someone_elses_video(member_client, team, owner):
    generation = make_generation(team, owner.user)
    assert member_client.post(reverse("generator:video-delete", args=[generation.uuid])).status_code == 403
    generation.refresh_from_db()
    assert generation.deleted_at is None


@pytest.mark.parametrize("name", ["generator:job-detail", "generator:poster"])
def test_another_teams_generation_pages_are_404(member_client, other_team, name):
    foreign = make_generation(other_team)
    assert member_client.get(reverse(name, args=[foreign.uuid])).status_code == 404


@pytest.mark.parametrize("name", ["generator:job-cancel", "generator:job-retry", "generator:video-delete"])
def test_another_teams_generation_actions_are_404_and_change_nothing(owner_client, other_team, name):
    foreign = make_generation(other_team, status=Status.PROCESSING)
    assert owner_client.post(reverse(name, args=[foreign.uuid])).status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == Status.PROCESSING
    assert foreign.deleted_at is None
    assert Generation.objects.filter(team=other_team).count() == 1


# --- storages ---------------------------------------------------------------------------------


def test_connect_a_local_storage_and_test_it_step_by_step(owner_client, team):
    response = owner_client.post(
        reverse("generator:storage-connect"),
        {"name": "photos", "type": "local", "path": "photos"},
    )
    assert response.status_code == 302
    storage = Storage.objects.get(team=team, name="photos")
    check = owner_client.post(reverse("generator:storage-check", args=[storage.pk]), HTTP_HX_REQUEST="true")
    html = check.content.decode()
    assert check.status_code == 200
    assert "<html" not in html
    for step in ("Write", "Read", "Delete"):
        assert step in html
    assert "Connection works." in html


def test_connect_storage_with_a_bad_name_shows_the_error(owner_client, team):
    response = owner_client.post(reverse("generator:storage-connect"), {"name": "bad name!", "type": "local"})
    assert response.status_code == 302
    html = owner_client.get(response["Location"]).content.decode()
    assert 'id="id_name_error"' in html
    assert "Use 1 to 50 letters, digits, - or _" in html
    assert 'value="bad name!"' in html
    assert not Storage.objects.filter(team=team).exists()


def test_member_cannot_connect_or_disconnect_storages(member_client, team):
    storage = local_storage(team)
    assert member_client.post(reverse("generator:storage-connect"), {"name": "x", "type": "local"}).status_code == 403
    assert member_client.post(reverse("generator:storage-disconnect", args=[storage.pk])).status_code == 403
    assert Storage.objects.filter(pk=storage.pk).exists()


def test_member_cannot_run_the_storage_check_and_is_not_offered_it(member_client, team, monkeypatch):
    from generator.views import storages as views

    storage = local_storage(team)
    probes = []
    monkeypatch.setattr(views, "run_storage_check", lambda **kwargs: probes.append(kwargs))
    url = reverse("generator:storage-check", args=[storage.pk])
    assert member_client.post(url).status_code == 403
    assert member_client.post(url, HTTP_HX_REQUEST="true").status_code == 403
    assert probes == []
    page = member_client.get(reverse("generator:storages")).content.decode()
    assert "photos" in page
    assert url not in page
    assert "Test connection" not in page


def test_browse_lists_folders_and_image_thumbnails(member_client, team, settings):
    storage = local_storage(team)
    root = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "photos"
    (root / "shoes").mkdir(parents=True)
    (root / "shoes" / "red.png").write_bytes(png_bytes())
    (root / "notes.txt").write_text("hello")
    top = member_client.get(reverse("generator:storage-browse", args=[storage.pk]), HTTP_HX_REQUEST="true")
    assert top.status_code == 200
    assert "<html" not in top.content.decode()
    assert "shoes" in top.content.decode()
    inner = browse(member_client, storage, folder="shoes/", pick="1")
    assert 'data-pick="storage://photos/shoes/red.png"' in inner
    thumb = thumbnail(member_client, storage, "shoes/red.png")
    assert thumb.status_code == 200
    assert thumb["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(thumb.content))
    assert max(image.size) <= 240


def test_thumbnail_refuses_traversal(member_client, team):
    storage = local_storage(team)
    url = reverse("generator:storage-thumbnail", args=[storage.pk])
    assert member_client.get(url, {"key": "../other/x.png"}).status_code == 404


def test_disconnect_storage(owner_client, team):
    storage = local_storage(team)
    assert owner_client.post(reverse("generator:storage-disconnect", args=[storage.pk])).status_code == 302
    assert not Storage.objects.filter(pk=storage.pk).exists()


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "generator:storage-browse"),
        ("get", "generator:storage-thumbnail"),
        ("post", "generator:storage-check"),
        ("post", "generator:storage-disconnect"),
    ],
)
def test_another_teams_storage_is_404(owner_client, other_team, method, name):
    foreign = local_storage(other_team)
    response = getattr(owner_client, method)(
        reverse(name, args=[foreign.pk]), {"key": "a.png"} if method == "get" else {}
    )
    assert response.status_code == 404
    assert Storage.objects.filter(pk=foreign.pk).exists()


def test_storage_pages_never_show_secrets(owner_client, team):
    Storage.objects.create(
        team=team,
        name="s3box",
        type="s3",
        parameters={"bucket": "b"},
        secrets_encrypted="gAAAAA-super-secret-token",
    )
    html = owner_client.get(reverse("generator:storages")).content.decode()
    assert "s3box" in html
    assert "super-secret" not in html


# --- credits ----------------------------------------------------------------------------------


def test_credits_page_shows_balance_usage_chart_and_ledger(member_client, team, member):
    make_generation(team, member.user, hold=True)
    team.refresh_from_db()
    html = member_client.get(reverse("generator:credits")).content.decode()
    assert f'id="credits-balance">{team.balance}<' in html
    assert "<svg" in html
    assert html.count('class="bar"') == 30
    assert "Mia Member" in html
    assert "test setup" in html  # the factory's grant reason
    assert "5 s video" in html


def test_credits_ledger_fragment(member_client, team):
    html = member_client.get(reverse("generator:credits"), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html
    assert 'id="ledger"' in html


def test_credits_page_does_not_show_another_teams_ledger(member_client, other_team):
    from generator.services.billing import credits_grant

    credits_grant(team=other_team, amount=5, reason="foreign gift")
    assert "foreign gift" not in member_client.get(reverse("generator:credits")).content.decode()


# --- API keys ---------------------------------------------------------------------------------


def test_create_key_shows_the_secret_once_and_it_works(owner_client, team):
    from generator.services.apikeys import apikey_authenticate

    response = owner_client.post(
        reverse("generator:key-create"),
        {"name": "shop import", "scopes": ["video_generation"]},
    )
    assert response.status_code == 302  # Post/Redirect/Get: a reload of the page cannot create a second key
    shown = owner_client.get(reverse("generator:keys"))
    assert shown["Cache-Control"] == "no-store"
    html = shown.content.decode()
    raw = html.split('id="raw-key">')[1].split("<")[0]
    assert apikey_authenticate(raw).team == team
    assert 'data-copy="raw-key"' in html
    assert raw not in owner_client.get(reverse("generator:keys")).content.decode()
    assert ApiKey.objects.get(team=team).scopes == ["video_generation"]


def test_member_cannot_create_or_revoke_keys(member_client, team):
    make_api_key(team)
    key = ApiKey.objects.get(team=team)
    assert member_client.post(reverse("generator:key-create"), {"name": "x", "scopes": ["storage"]}).status_code == 403
    assert member_client.post(reverse("generator:key-revoke", args=[key.pk])).status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


def test_revoke_key(owner_client, team):
    make_api_key(team, name="old")
    key = ApiKey.objects.get(team=team)
    assert owner_client.post(reverse("generator:key-revoke", args=[key.pk])).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "revoked" in owner_client.get(reverse("generator:keys")).content.decode()


def test_another_teams_key_is_404(owner_client, other_team):
    make_api_key(other_team)
    key = ApiKey.objects.get(team=other_team)
    assert owner_client.post(reverse("generator:key-revoke", args=[key.pk])).status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


# --- team -------------------------------------------------------------------------------------


def test_invite_link_creates_the_account_once(owner_client, client, team, owner):
    response = owner_client.post(reverse("generator:team-invite"), {"email": "new@example.com", "role": "member"})
    assert response.status_code == 302
    page = owner_client.get(reverse("generator:team"))
    assert page["Cache-Control"] == "no-store"
    link = page.content.decode().split('id="invite-link">')[1].split("<")[0]
    assert link not in owner_client.get(reverse("generator:team")).content.decode()  # shown once
    path = link.removeprefix("http://testserver")
    owner_client.logout()

    form = client.get(path)
    assert form.status_code == 200
    assert "Join Acme" in form.content.decode()
    accepted = client.post(path, {"name": "New Person", "password1": PASSWORD, "password2": PASSWORD})
    assert accepted.status_code == 302
    membership = Membership.objects.get(team=team, user__email="new@example.com")
    assert membership.role == "member"
    assert client.get(reverse("generator:home")).status_code == 200  # logged in

    client.logout()
    assert client.get(path).status_code == 404  # single use


def test_expired_invite_is_refused(client, team, owner):
    invite, raw = invite_create(team=team, actor=owner, email="late@example.com")
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(reverse("generator:invite-accept", args=[raw]))
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_member_cannot_invite(member_client):
    response = member_client.post(reverse("generator:team-invite"), {"email": "x@example.com", "role": "member"})
    assert response.status_code == 403
    assert not Invite.objects.exists()


def test_removing_a_member_revokes_their_keys(owner_client, team, member):
    make_api_key(team, user=member.user, name="theirs")
    make_api_key(team, name="cli")
    response = owner_client.post(reverse("generator:member-remove", args=[member.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert ApiKey.objects.get(name="theirs").revoked_at is not None
    assert ApiKey.objects.get(name="cli").revoked_at is None


def test_last_owner_cannot_be_removed(owner_client, owner):
    response = owner_client.post(reverse("generator:member-remove", args=[owner.pk]), follow=True)
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_owner_sets_a_monthly_cap_that_the_credit_hold_enforces(owner_client, client, team, member):
    response = owner_client.post(
        reverse("generator:member-update", args=[member.pk]),
        {f"m{member.pk}-role": "member", f"m{member.pk}-monthly_cap": "40"},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.monthly_cap == 40
    client.force_login(member.user)
    assert client.post(reverse("generator:generate"), form_data()).status_code == 302
    Generation.objects.update(created_at=timezone.now() - timedelta(seconds=5))
    html = refused_form_page(client, form_data(prompt="another prompt"))
    assert "You have used 35 of your 40 credits this month; this video costs 35." in html


def test_another_teams_member_is_404(owner_client, other_team):
    foreign = Membership.objects.get(team=other_team)
    assert owner_client.post(reverse("generator:member-remove", args=[foreign.pk])).status_code == 404
    assert owner_client.post(reverse("generator:member-update", args=[foreign.pk]), {}).status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()


def test_switch_team_changes_the_current_team(client, team, other_team):
    user = make_user("both@example.com")
    make_member(team, user)
    make_member(other_team, user)
    client.force_login(user)
    make_generation(other_team, prompt="other team video")
    assert "other team video" not in client.get(reverse("generator:gallery")).content.decode()
    response = client.post(reverse("generator:team-switch"), {"team": other_team.pk, "next": "/gallery/"})
    assert response.status_code == 302
    assert response["Location"] == "/gallery/"
    assert "other team video" in client.get(reverse("generator:gallery")).content.decode()


def test_cannot_switch_to_a_team_you_are_not_in(member_client, other_team):
    assert member_client.post(reverse("generator:team-switch"), {"team": other_team.pk}).status_code == 404


# --- accounts ---------------------------------------------------------------------------------


def test_login_with_email_and_logout(client, member):
    response = client.post(reverse("login"), {"username": "MIA@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("generator:home")).status_code == 200
    logged_out = client.post(reverse("logout"))
    assert logged_out.status_code == 302
    assert logged_out["Location"] == reverse("login")
    assert "You are logged out." in client.get(reverse("login")).content.decode()  # said once, on the login page
    assert "You are logged out." not in client.get(reverse("login")).content.decode()
    assert client.get(reverse("generator:home")).status_code == 302


def test_login_is_throttled_after_five_failures_per_email_and_address(client, member, owner):
    for attempt in range(5):
        response = client.post(reverse("login"), {"username": "mia@example.com", "password": "wrong"})
        assert response.status_code == (200 if attempt < 4 else 429)  # the fifth failure locks
    blocked = client.post(reverse("login"), {"username": "mia@example.com", "password": PASSWORD})
    assert "Too many failed attempts" in blocked.content.decode()
    assert "_auth_user_id" not in client.session
    other = client.post(reverse("login"), {"username": "owner@example.com", "password": PASSWORD})
    assert other.status_code == 302


def test_password_reset_sends_an_email_with_a_link(client, member):
    response = client.post(reverse("password_reset"), {"email": "mia@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/reset/" in mail.outbox[0].body


def test_password_change_page(member_client):
    assert member_client.get(reverse("password_change")).status_code == 200


def test_owner_sets_a_webhook_and_sees_the_secret_once_and_the_delivery_log(owner_client, team):
    from generator.models import WebhookDelivery

    response = owner_client.post(
        reverse("generator:team-webhook"),
        {"webhook_url": "https://hooks.example.com/video"},
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.webhook_url == "https://hooks.example.com/video"
    secret = webhook_secret(team)
    assert f'id="webhook-secret">{secret}<' in owner_client.get(reverse("generator:team")).content.decode()
    generation = make_generation(team)
    WebhookDelivery.objects.create(generation=generation, url=team.webhook_url, attempt=2, status_code=503)
    page = owner_client.get(reverse("generator:team")).content.decode()
    assert secret not in page
    assert ">503<" in page


def test_webhook_to_a_private_address_is_refused_inline(owner_client, team):
    response = owner_client.post(reverse("generator:team-webhook"), {"webhook_url": "http://127.0.0.1/hook"})
    assert response.status_code == 302
    html = owner_client.get(reverse("generator:team")).content.decode()
    assert "webhooks can only go to a public address" in html
    assert 'value="http://127.0.0.1/hook"' in html  # what was typed is kept
    team.refresh_from_db()
    assert team.webhook_url == ""


def test_member_cannot_set_the_webhook(member_client, team):
    assert (
        member_client.post(reverse("generator:team-webhook"), {"webhook_url": "https://x.example.com/"}).status_code
        == 403
    )


def test_heic_upload_is_accepted_and_kept_with_its_extension(member_client, team):
    from pillow_heif import register_heif_opener

    register_heif_opener()
    buffer = io.BytesIO()
    Image.new("RGB", (400, 320), (10, 120, 60)).save(buffer, "HEIF")
    upload = named_upload(buffer.getvalue(), "IMG_0001.HEIC")
    response = member_client.post(reverse("generator:generate"), {**form_data(source="upload"), "upload": upload})
    assert response.status_code == 302
    assert Generation.objects.get(team=team).request["input"].endswith(".heic")


def test_mpo_upload_from_a_camera_is_accepted_as_a_jpeg(member_client, team):
    first, second = Image.new("RGB", (400, 320), (10, 120, 60)), Image.new("RGB", (400, 320), (200, 20, 20))
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    upload = named_upload(buffer.getvalue(), "DSCF0001.JPG")
    response = member_client.post(reverse("generator:generate"), {**form_data(source="upload"), "upload": upload})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Generation.objects.get(team=team).request["input"].endswith(".jpg")


def test_job_page_names_what_the_engine_did(member_client, team, member):
    plan = {
        "moves": [{"type": "zoom_in"}],
        "effects": [{"type": "light_sweep"}],
        "suppressed": ["shake"],
    }
    generation = make_generation(team, member.user, plan=plan)
    html = member_client.get(reverse("generator:job-detail", args=[generation.uuid])).content.decode()
    assert "zoom in, light sweep" in html
    assert "avoided: shake" in html


def test_finished_job_says_how_long_it_took_in_seconds(member_client, team, member):
    generation = make_generation(team, member.user)
    Generation.objects.filter(pk=generation.pk).update(completed_at=generation.created_at + timedelta(seconds=23))
    assert "in 23 s" in member_client.get(reverse("generator:jobs")).content.decode()


def test_done_job_page_offers_the_player_and_download(member_client, team, member):
    generation = make_generation(team, member.user, poster_name="posters/x.jpg")
    html = member_client.get(reverse("generator:job-detail", args=[generation.uuid])).content.decode()
    assert 'data-video="http://testserver/v/' in html
    assert "Download" in html


def _card_html(html: str, generation) -> str:
    before, after = html.split(f'id="video-{generation.uuid}"')
    return before.rsplit("<article", 1)[1] + after.split("</article>")[0]


def test_video_whose_output_storage_was_disconnected_says_so_without_a_player(member_client, team, member):
    kept = local_storage(team, name="kept", path="kept")
    connected = make_generation(team, member.user, is_temporary=False, output_storage=kept, output_key="kept/a.mp4")
    orphan = make_generation(team, member.user, is_temporary=False, output_storage=None, output_key="gone/b.mp4")
    gallery = member_client.get(reverse("generator:gallery")).content.decode()
    page = member_client.get(reverse("generator:job-detail", args=[orphan.uuid])).content.decode()
    for card in (_card_html(gallery, orphan), _card_html(page, orphan)):
        assert "Storage disconnected" in card
        assert "data-video" not in card
        assert "/v/" not in card
        assert "Download" not in card
        assert " left" not in card
    alive = _card_html(gallery, connected)
    assert 'data-video="http://testserver/v/' in alive
    assert "Download" in alive
    assert "Storage disconnected" not in alive


def test_generate_page_shows_how_much_of_the_cap_is_used(client, team):
    membership = make_member(team, monthly_cap=100)
    make_generation(team, membership.user, hold=True)
    client.force_login(membership.user)
    html = client.get(reverse("generator:home")).content.decode()
    assert "35 of 100 credits used" in html


def test_refused_upload_leaves_no_file_behind(member_client, team, settings):
    upload = named_upload(png_bytes(), "shoe.png")
    html = refused_form_page(member_client, {**form_data(source="upload", prompt="ab"), "upload": upload})
    assert "id_prompt_error" in html
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "uploads"
    assert not [p for p in folder.rglob("*") if p.is_file()]


def test_queued_job_shows_its_position_in_the_shared_queue(member_client, team, member, other_team):
    now = timezone.now()
    make_generation(other_team, status=Status.PROCESSING, created_at=now - timedelta(seconds=30))
    make_generation(
        team,
        member.user,
        status=Status.PROCESSING,
        stage=Stage.RENDERING,
        created_at=now - timedelta(seconds=20),
    )
    mine = make_generation(
        team,
        member.user,
        status=Status.PROCESSING,
        created_at=now - timedelta(seconds=10),
    )
    row = member_client.get(reverse("generator:job-detail", args=[mine.uuid]), HTTP_HX_REQUEST="true").content.decode()
    assert "position 2 in the queue" in row
    first = make_generation(other_team, status=Status.PROCESSING, created_at=now - timedelta(seconds=40))
    Generation.objects.filter(pk=first.pk).update(stage=Stage.FETCHING)
    Generation.objects.filter(team=other_team, stage=Stage.QUEUED).update(stage=Stage.FETCHING)
    row = member_client.get(reverse("generator:job-detail", args=[mine.uuid]), HTTP_HX_REQUEST="true").content.decode()
    assert "next in line" in row


def test_password_reset_link_sets_a_new_password(client, member):
    client.post(reverse("password_reset"), {"email": "mia@example.com"})
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    path = link.strip().removeprefix("http://testserver")
    form_page = client.get(path, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    new_password = "a-brand-new-long-passphrase"
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
        follow=True,
    )
    assert "Password set" in done.content.decode()
    assert client.login(email="mia@example.com", password=new_password)


# --- photos over the pixel cap (decompression bombs) ------------------------------------------


def uploads_left(settings, team) -> list:
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "uploads"
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("data", "cap"),
    [
        (png_header_only(20_000, 20_000), 40_000_000),  # 70 bytes claiming more than Pillow's own bomb limit
        (png_header_only(8000, 6000), 40_000_000),  # 48 MP claimed, under Pillow's limit, over ours
        (png_bytes((400, 320)), 100_000),  # a real picture over a lowered cap
    ],
    ids=["over-pillows-limit", "over-the-cap", "real-over-a-lowered-cap"],
)
def test_upload_over_the_pixel_cap_is_refused_inline_at_upload_time(member_client, team, settings, data, cap):
    settings.GENERATOR_MAX_PIXELS = cap
    html = refused_form_page(member_client, {**form_data(source="upload"), "upload": named_upload(data, "big.png")})
    assert f"This photo has more than {cap:,} pixels: choose a smaller one, or scale it down first." in html
    assert 'id="id_upload_error"' in html
    assert not Generation.objects.filter(team=team).exists()
    assert not uploads_left(settings, team)


def test_thumbnail_of_an_image_over_the_pixel_cap_is_404_and_decodes_nothing(
    member_client, team, settings, monkeypatch
):
    storage = local_storage(team)
    root = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "photos"
    root.mkdir(parents=True, exist_ok=True)
    (root / "bomb.png").write_bytes(png_header_only(20_000, 20_000))
    (root / "big.png").write_bytes(png_bytes((400, 320)))
    settings.GENERATOR_MAX_PIXELS = 100_000
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size) or real_load(self))
    url = reverse("generator:storage-thumbnail", args=[storage.pk])
    assert member_client.get(url, {"key": "bomb.png"}).status_code == 404
    assert member_client.get(url, {"key": "big.png"}).status_code == 404
    assert decoded == []
    settings.GENERATOR_MAX_PIXELS = 128_000
    assert member_client.get(url, {"key": "big.png"}).status_code == 200


def test_thumbnail_decodes_a_big_picture_reduced_before_converting_it(member_client, team, settings, monkeypatch):
    storage = local_storage(team)
    root = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "photos"
    root.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("L", (2400, 1600), 90).save(buffer, "PNG")
    (root / "wide.png").write_bytes(buffer.getvalue())
    converted = []
    real_convert = Image.Image.convert
    monkeypatch.setattr(
        Image.Image, "convert", lambda self, *a, **k: converted.append(self.size) or real_convert(self, *a, **k)
    )
    thumb = thumbnail(member_client, storage, "wide.png")
    assert thumb.status_code == 200
    assert thumb["X-Image-Size"] == "2400x1600"
    assert converted
    assert all(w * h <= 400 * 267 for w, h in converted), converted


def test_browse_offers_use_this_photo_which_opens_generate_with_it_picked(member_client, team, settings):
    storage = local_storage(team)
    root = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "photos"
    (root / "shoes").mkdir(parents=True)
    (root / "shoes" / "red shoe.png").write_bytes(png_bytes())
    html = browse(member_client, storage, htmx=False, folder="shoes/")
    link = re.search(r'href="([^"]+)" aria-label="Use this photo: red shoe.png"', html)
    assert link, html
    form = member_client.get(link.group(1).replace("&amp;", "&")).content.decode()
    assert 'value="storage://photos/shoes/red shoe.png"' in form
