"""Formats in the dashboard (docs/formats.md): the Generate form's shape picker, sizes and options, the
job page's and gallery card's badges, the gallery's shape filter, the thumbnail's photo size."""

from __future__ import annotations

import io
import re
import uuid
from html import unescape

import pytest
from django.urls import reverse
from django.utils.html import escape
from PIL import Image

from generator.models import Generation
from generator.services.storage_connections import storage_create
from tests.factories import make_team
from tests.test_views import form_data, make_generation, refused_form_page

pytestmark = pytest.mark.django_db


OLD_OPTIONS = {"prompt": "slow zoom in, light sweep", "duration": 5, "guidance_scale": 0.5}


def shape_labels(html: str) -> dict[str, str]:
    """Map each shape radio's value to the size its label shows."""
    labels = re.findall(r'<label class="shape".*?</label>', html, flags=re.S)
    found = {}
    for label in labels:
        value = re.search(r'name="aspect_ratio" value="([^"]+)"', label).group(1)
        found[value] = re.search(r'class="shape-size"[^>]*>([^<]*)<', label).group(1)
    return found


# --- the Generate form -------------------------------------------------------------------------


def test_generate_page_offers_every_shape_with_its_size_and_the_format_controls(member_client):
    html = member_client.get(reverse("generator:home")).content.decode()
    assert shape_labels(html) == {
        "source": "up to 1920 px",
        "16:9": "1920 × 1080",
        "9:16": "1080 × 1920",
        "1:1": "1080 × 1080",
        "4:5": "1080 × 1350",
    }
    assert re.search(r'name="aspect_ratio" value="source" id="[^"]+" checked', html)
    assert 'data-size-720p="720 × 1280"' in html
    assert 'data-size-720p="up to 1280 px"' in html
    assert re.search(r'name="resolution" value="1080p"[^>]*checked', html)
    assert 'name="resolution" value="720p"' in html
    assert re.search(r'<input type="checkbox" name="loop"', html)
    assert re.search(r'<option value="auto" selected>', html)
    assert 'type="color" name="background_colour"' in html
    assert re.search(r'id="output-size">up to 1920 px<', html)
    assert "shapes.js" in html


def test_a_form_left_at_the_default_format_sends_no_format_options(member_client, team):
    response = member_client.post(
        reverse("generator:generate"),
        form_data(aspect_ratio="source", resolution="1080p", background="auto", background_colour="#FFFFFF"),
    )
    assert response.status_code == 302
    assert Generation.objects.get(team=team).request["options"] == OLD_OPTIONS


def test_a_form_without_the_format_fields_still_works_as_before(member_client, team):
    assert member_client.post(reverse("generator:generate"), form_data()).status_code == 302
    generation = Generation.objects.get(team=team)
    assert generation.request["options"] == OLD_OPTIONS
    assert generation.aspect_ratio == "source"


@pytest.mark.parametrize(
    ("fields", "sent"),
    [
        (
            {"aspect_ratio": "9:16"},
            {"aspect_ratio": "9:16", "resolution": "1080p", "loop": False, "background": "auto"},
        ),
        (
            {"aspect_ratio": "1:1", "resolution": "720p", "loop": "on", "background": "blur"},
            {"aspect_ratio": "1:1", "resolution": "720p", "loop": True, "background": "blur"},
        ),
        (
            {"background": "colour", "background_colour": "#1a2b3c"},
            {"aspect_ratio": "source", "resolution": "1080p", "loop": False, "background": "#1A2B3C"},
        ),
    ],
)
def test_the_form_sends_the_chosen_format_and_charges_the_usual_price(member_client, team, fields, sent):
    response = member_client.post(reverse("generator:generate"), form_data(**fields))
    assert response.status_code == 302, response.content.decode()[:2000]
    generation = Generation.objects.get(team=team)
    assert generation.request["options"] == {**OLD_OPTIONS, **sent}
    assert generation.aspect_ratio == sent["aspect_ratio"]
    assert generation.cost == 35
    team.refresh_from_db()
    assert team.balance == 1000 - 35


@pytest.mark.parametrize(
    ("fields", "errors_id", "message"),
    [
        (
            {"aspect_ratio": "2:1"},
            "id_aspect_ratio_error",
            "Choose one of the shapes: the photo's own, 16:9, 9:16, 1:1 or 4:5.",
        ),
        ({"resolution": "4k"}, "id_resolution_error", "Choose 1080p or 720p."),
        ({"background": "pink"}, "id_background_error", "Choose a background from the list."),
        (
            {"background": "colour", "background_colour": "teal"},
            "id_background_colour_error",
            "Pick a colour, or type one as # and six hex digits, like #1A2B3C.",
        ),
    ],
)
def test_a_bad_format_value_comes_back_next_to_its_field_in_plain_words(
    member_client, team, fields, errors_id, message
):
    html = refused_form_page(member_client, form_data(**fields))
    assert re.search(rf'id="{errors_id}"><li>{re.escape(escape(message))}</li>', html), html[:3000]
    assert "There is a problem" in html
    field_id = errors_id.removesuffix("_error")
    assert f'href="#{field_id}"' in html
    assert f'id="{field_id}"' in html  # the summary's link leads to the field
    assert not Generation.objects.filter(team=team).exists()
    team.refresh_from_db()
    assert team.balance == 1000


def test_a_refused_form_keeps_the_chosen_format_and_shows_its_size(member_client):
    html = refused_form_page(
        member_client,
        form_data(prompt="ab", aspect_ratio="4:5", resolution="720p", loop="on", background="blur"),
    )
    assert re.search(r'name="aspect_ratio" value="4:5" id="[^"]+" checked', html)
    assert re.search(r'name="resolution" value="720p"[^>]*checked', html)
    assert re.search(r'<input type="checkbox" name="loop"[^>]*checked', html)
    assert re.search(r'<option value="blur" selected>', html)
    assert shape_labels(html)["4:5"] == "720 × 900"
    assert re.search(r'id="output-size">720 × 900<', html)


def test_edit_and_send_again_starts_from_the_jobs_format(member_client, team, member):
    generation = make_generation(team, member.user, aspect_ratio="9:16")
    generation.request["options"].update(
        {"aspect_ratio": "9:16", "resolution": "720p", "loop": True, "background": "#112233"}
    )
    generation.save(update_fields=["request"])
    html = member_client.get(reverse("generator:home"), {"from": str(generation.uuid)}).content.decode()
    assert re.search(r'name="aspect_ratio" value="9:16" id="[^"]+" checked', html)
    assert re.search(r'name="resolution" value="720p"[^>]*checked', html)
    assert re.search(r'<input type="checkbox" name="loop"[^>]*checked', html)
    assert re.search(r'<option value="colour" selected>', html)
    assert 'value="#112233"' in html
    old = make_generation(team, member.user)
    html = member_client.get(reverse("generator:home"), {"from": str(old.uuid)}).content.decode()
    assert re.search(r'name="aspect_ratio" value="source" id="[^"]+" checked', html)
    assert re.search(r'<option value="auto" selected>', html)


@pytest.mark.parametrize(
    ("query", "size_1080p", "size_720p"),
    [
        ({"photo_width": "4000", "photo_height": "3000"}, "1920 × 1440", "1280 × 960"),
        ({"photo_width": "700", "photo_height": "500", "resolution": "720p"}, "1400 × 1000", "1280 × 914"),
        ({"photo_width": "600", "photo_height": "400"}, "1200 × 800", "1200 × 800"),
        ({"photo_width": ""}, "up to 1920 px", "up to 1280 px"),
        ({"photo_width": "-4", "photo_height": "3"}, "up to 1920 px", "up to 1280 px"),
        ({"photo_width": "abc", "photo_height": "3"}, "up to 1920 px", "up to 1280 px"),
    ],
)
def test_the_photo_size_fragment_gives_the_size_of_the_photos_own_shape(member_client, query, size_1080p, size_720p):
    response = member_client.get(reverse("generator:home"), query, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode().strip()
    assert "<html" not in html
    shown = size_720p if query.get("resolution") == "720p" else size_1080p
    assert html == (
        f'<span class="shape-size" id="source-size" data-size-1080p="{size_1080p}" '
        f'data-size-720p="{size_720p}">{shown}</span>'
    )


def test_the_photo_size_fragment_needs_a_team_member(client, team):
    response = client.get(reverse("generator:home"), {"photo_width": "4", "photo_height": "3"}, HTTP_HX_REQUEST="true")
    assert "source-size" not in response.content.decode()
    assert response["HX-Redirect"].startswith("/accounts/login/")  # htmx is sent to the login page


# --- the thumbnail tells the picker the photo's size -------------------------------------------


def test_a_storage_thumbnail_says_the_photos_own_upright_size(member_client, team, settings):
    storage = storage_create(team=team, user=None, name="photos", type="local", parameters={"path": "photos"})
    root = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "photos"
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 800), (20, 120, 200)).save(buffer, "PNG")
    (root / "wide.png").write_bytes(buffer.getvalue())
    rotated = Image.new("RGB", (1200, 800), (200, 120, 20))
    exif = rotated.getexif()
    exif[0x0112] = 6  # shown turned a quarter: 800 wide, 1200 tall
    buffer = io.BytesIO()
    rotated.save(buffer, "JPEG", exif=exif)
    (root / "turned.jpg").write_bytes(buffer.getvalue())
    url = reverse("generator:storage-thumbnail", args=[storage.pk])
    wide = member_client.get(url, {"key": "wide.png"})
    assert wide["X-Image-Size"] == "1200x800"
    assert Image.open(io.BytesIO(wide.content)).size == (240, 160)
    turned = member_client.get(url, {"key": "turned.jpg"})
    assert turned["X-Image-Size"] == "800x1200"
    assert Image.open(io.BytesIO(turned.content)).size == (160, 240)


# --- badges, the job page, the gallery filter --------------------------------------------------


def format_row(html: str) -> str:
    cell = re.search(r'<td id="job-format">(.*?)</td>', html, flags=re.S).group(1)
    return " ".join(unescape(re.sub(r"<[^>]+>", "", cell)).split())


def shaped(team, user, shape: str, **options) -> Generation:
    generation = make_generation(team, user, aspect_ratio=shape, prompt=f"a {shape} video")
    generation.request["options"].update({"aspect_ratio": shape, "resolution": "1080p", "loop": False, **options})
    generation.save(update_fields=["request"])
    return generation


def test_gallery_cards_show_the_shape_as_a_badge(member_client, team, member):
    shaped(team, member.user, "9:16", resolution="720p", loop=True)
    make_generation(team, member.user, prompt="an old video")
    html = member_client.get(reverse("generator:gallery")).content.decode()
    tiles = re.findall(r'<article class="tile.*?</article>', html, flags=re.S)
    assert len(tiles) == 2
    vertical = next(tile for tile in tiles if "a 9:16 video" in tile)
    assert re.search(
        r'data-shape="9:16" title="9:16 vertical"><span class="visually-hidden">Shape: </span>9:16<', vertical
    )
    assert '<span class="badge badge-shape">720p</span>' in vertical
    assert '<span class="badge badge-shape">Loop</span>' in vertical
    old = next(tile for tile in tiles if "an old video" in tile)
    assert 'data-shape="source" title="Photo&#x27;s shape"><span class="visually-hidden">Shape: </span>Original<' in old
    assert "720p" not in old
    assert "Loop" not in old


def test_job_page_and_row_show_the_format_and_the_video_size(member_client, team, member):
    generation = shaped(team, member.user, "4:5", background="#112233")
    generation.input_object = {"width": 1600, "height": 1200}
    generation.save(update_fields=["input_object"])
    html = member_client.get(reverse("generator:job-detail", args=[generation.uuid])).content.decode()
    assert format_row(html) == "4:5 portrait · 1080p · 1080 × 1350 · background: #112233"
    assert re.search(r'class="job-meta">#\d+ · <span class="badge badge-shape" data-shape="4:5"', html)
    jobs = member_client.get(reverse("generator:jobs")).content.decode()
    assert 'data-shape="4:5"' in jobs


def test_job_page_of_an_old_request_shows_the_photos_own_shape_and_size(member_client, team, member):
    generation = make_generation(team, member.user, input_object={"width": 4000, "height": 3000})
    html = member_client.get(reverse("generator:job-detail", args=[generation.uuid])).content.decode()
    assert format_row(html) == "Photo's shape · 1080p · 1920 × 1440 · background: automatic"
    assert 'data-shape="source"' in html


def test_gallery_filters_by_shape(member_client, team, member):
    shaped(team, member.user, "9:16")
    shaped(team, member.user, "9:16")
    shaped(team, member.user, "1:1")
    make_generation(team, member.user, prompt="an old video")
    for shape, expected in [("9:16", 2), ("1:1", 1), ("source", 1), ("4:5", 0), ("", 4), ("bogus", 4)]:
        response = member_client.get(reverse("generator:gallery"), {"shape": shape}, HTTP_HX_REQUEST="true")
        html = response.content.decode()
        shapes = re.findall(r'data-shape="([^"]+)"', html)
        assert len(shapes) == expected, (shape, shapes)
        if expected and shape in Generation.AspectRatio.values:
            assert set(shapes) == {shape}
    page = member_client.get(reverse("generator:gallery"), {"shape": "9:16"}).content.decode()
    assert '<option value="9:16" selected>9:16 vertical</option>' in page
    assert ">Clear</a>" in page
    assert ">Clear</a>" not in member_client.get(reverse("generator:gallery")).content.decode()


def test_gallery_shape_filter_keeps_the_query_count(member_client, team, member, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(30):
        shaped(team, member.user, ["9:16", "1:1", "16:9"][i % 3])
    with CaptureQueriesContext(connection) as unfiltered:
        member_client.get(reverse("generator:gallery"))
    with django_assert_num_queries(len(unfiltered)):
        response = member_client.get(reverse("generator:gallery"), {"shape": "9:16"})
    assert response.content.decode().count('<article class="tile') == 10


def test_gallery_shape_filter_is_planned_on_the_shape_index(team):
    from django.db import connection

    from generator.selectors import generation_gallery

    # A planner reads statistics: on an empty table any index (or none) is as good as another, so
    # the table holds a gallery's worth of videos in several shapes and teams, then is analysed.
    other = make_team("Other", credits=0, slug="other")
    template = make_generation(team, None)
    rows = []
    for i in range(600):
        row = Generation.objects.get(pk=template.pk)
        row.pk = None
        row.uuid = uuid.uuid4()
        row.team = team if i % 2 else other
        row.aspect_ratio = ["9:16", "1:1", "16:9", "4:5", "source", "source"][i % 6]
        rows.append(row)
    Generation.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE generator_generation" if connection.vendor == "postgresql" else "ANALYZE")

    sql, params = generation_gallery(team=team, aspect_ratio="9:16").query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " ".join(str(part) for row in cursor.fetchall() for part in row)
    assert "generator_generation_team_ar" in plan, plan


def test_gallery_shape_filter_does_not_show_another_teams_videos(member_client, team, member):
    other = make_team("Other", credits=0, slug="other")
    shaped(other, None, "9:16")
    html = member_client.get(reverse("generator:gallery"), {"shape": "9:16"}).content.decode()
    assert "a 9:16 video" not in html


# --- a batch from the Generate page carries the format too ----------------------------------------


def test_the_batch_form_offers_the_shapes_and_sends_the_format_for_every_item(member_client, unlimited, settings):
    from generator.models import Batch, Storage
    from generator.services.batches import batches_dispatch

    team = unlimited

    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "photos"
    folder.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        buffer = io.BytesIO()
        Image.new("RGB", (400, 320), (200, 60, 40)).save(buffer, "PNG")
        (folder / name).write_bytes(buffer.getvalue())
    Storage.objects.create(team=team, name="photos", type="local", parameters={"path": "photos"})
    page = member_client.get(reverse("generator:home"), {"mode": "batch"}).content.decode()
    assert shape_labels(page)["9:16"] == "1080 × 1920"
    response = member_client.post(
        reverse("generator:batch-new"),
        {
            "batch_source": "folder",
            "input_folder": "storage://photos/",
            "prompt_mode": "text",
            "prompt": "slow zoom in",
            "duration": "5",
            "guidance_scale": "0.5",
            "output_mode": "temporary",
            "aspect_ratio": "9:16",
            "resolution": "720p",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    batch = Batch.objects.get()
    assert batch.options["aspect_ratio"] == "9:16"
    assert batch.options["resolution"] == "720p"
    assert batches_dispatch() >= 2
    made = Generation.objects.filter(team=team)
    assert sorted(made.values_list("aspect_ratio", flat=True)) == ["9:16", "9:16"]
    assert {g.request["options"]["resolution"] for g in made} == {"720p"}
    assert {g.cost for g in made} == {35}
