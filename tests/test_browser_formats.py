"""Formats in a real browser (docs/formats.md): the shape picker's frames over the photo and its sizes,
the form without JavaScript, and 9:16 and 1:1 videos made by the real worker playing in the gallery.

Every page is audited with axe-core at 1360 px and 390 px (tests/browser_support.py).
"""

from __future__ import annotations

import re
import time

import pytest

from generator.engine.sizing import output_size
from tests.browser_support import FIXTURES, MEMBER, PHONE, WIDE, log_in, shot, wait_for

pytestmark = pytest.mark.slow

CUP = (600, 400)  # tests/fixtures/coffee.png, served as /products/cup.jpg
CAT = (451, 300)  # tests/fixtures/chelsea.png
ASTRONAUT = (512, 512)


def size_text(photo: tuple[int, int], shape: str = "source", resolution: str = "1080p") -> str:
    width, height = output_size(*photo, shape, resolution)
    return f"{width} × {height}"


def shape_label(page, value: str):
    return page.locator(f'label.shape:has(input[value="{value}"])')


def frame_geometry(page, value: str) -> dict:
    """The preview's photo box and frame box of one shape, as laid out."""
    return page.evaluate(
        """(value) => {
            const label = document.querySelector(`label.shape:has(input[value="${value}"])`);
            const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; };
            return {photo: box(label.querySelector('.shape-photo')), frame: box(label.querySelector('.shape-frame'))};
        }""",
        value,
    )


def assert_frame_over_photo(page, value: str, photo: tuple[int, int], ratio: float) -> None:
    geometry = frame_geometry(page, value)
    box, frame = geometry["photo"], geometry["frame"]
    assert box["w"] / box["h"] == pytest.approx(photo[0] / photo[1], rel=0.04), geometry
    assert frame["w"] / frame["h"] == pytest.approx(ratio, rel=0.06), geometry
    # The frame lies inside the photo, touching two opposite sides (the largest frame that fits).
    assert frame["x"] >= box["x"] - 0.5
    assert frame["y"] >= box["y"] - 0.5
    assert frame["x"] + frame["w"] <= box["x"] + box["w"] + 0.5
    assert frame["y"] + frame["h"] <= box["y"] + box["h"] + 0.5
    assert max(frame["w"] / box["w"], frame["h"] / box["h"]) == pytest.approx(1, abs=0.03), geometry


def wait_for_photo(page, size: tuple[int, int]) -> None:
    page.wait_for_function(
        "(want) => document.getElementById('shape-picker').dataset.photo === want", arg=f"{size[0]}x{size[1]}"
    )


def test_the_shape_picker_frames_the_photo_and_shows_the_video_size(stack, page):
    log_in(page, stack.base, MEMBER)
    picker = page.locator("#shape-picker")
    # No photo yet: neutral frames, and the photo's own shape has no size to tell.
    assert "has-photo" not in (picker.get_attribute("class") or "")
    assert page.locator("#output-size").inner_text() == "up to 1920 px"
    neutral = frame_geometry(page, "9:16")
    assert neutral["photo"]["w"] / neutral["photo"]["h"] == pytest.approx(9 / 16, rel=0.05)

    shape_label(page, "9:16").click()
    assert page.locator("#output-size").inner_text() == "1080 × 1920"
    page.get_by_text("720p", exact=True).click()
    assert page.locator("#output-size").inner_text() == "720 × 1280"
    assert shape_label(page, "1:1").locator(".shape-size").inner_text() == "720 × 720"
    assert shape_label(page, "source").locator(".shape-size").inner_text() == "up to 1280 px"

    # A URL off the machine (which the test browser cannot resolve) leaves the frames neutral.
    page.locator("#id_url").fill("https://shop.example/cup.jpg")
    page.locator("#id_url").press("Tab")
    page.wait_for_function("() => document.getElementById('shape-picker').dataset.photo === ''")
    assert "has-photo" not in (picker.get_attribute("class") or "")

    # A URL the browser can load: the frames are drawn over it and its own size is asked of the server.
    page.locator("#id_url").fill(stack.photos.url("/products/cup.jpg"))
    page.locator("#id_url").press("Tab")
    wait_for_photo(page, CUP)
    page.wait_for_function(
        "(want) => document.querySelector('#source-size').textContent === want", arg=size_text(CUP, resolution="720p")
    )
    assert "has-photo" in picker.get_attribute("class")
    assert_frame_over_photo(page, "9:16", CUP, 9 / 16)
    assert_frame_over_photo(page, "16:9", CUP, 16 / 9)
    assert_frame_over_photo(page, "1:1", CUP, 1)
    assert_frame_over_photo(page, "source", CUP, CUP[0] / CUP[1])
    page.get_by_text("1080p", exact=True).click()
    assert page.locator("#output-size").inner_text() == "1080 × 1920"
    shape_label(page, "source").click()
    assert page.locator("#output-size").inner_text() == size_text(CUP)
    shape_label(page, "4:5").click()
    assert page.locator("#output-size").inner_text() == "1080 × 1350"
    page.evaluate("document.getElementById('shape-picker').scrollIntoView()")
    shot(page, "generate-shapes")
    page.audit.check("the shape picker over a URL's photo")
    page.set_viewport_size(PHONE)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    picker_box = page.locator("#shape-picker").bounding_box()
    assert picker_box["x"] >= 0
    assert picker_box["x"] + picker_box["width"] <= PHONE["width"]
    assert_frame_over_photo(page, "9:16", CUP, 9 / 16)
    page.evaluate("document.getElementById('shape-picker').scrollIntoView()")
    shot(page, "generate-shapes-phone")
    page.set_viewport_size(WIDE)

    # An uploaded file replaces it while "Upload" is chosen; going back to the URL brings the cup back.
    page.get_by_text("Upload", exact=True).click()
    page.wait_for_function("() => document.getElementById('shape-picker').dataset.photo === ''")
    page.get_by_label("Image file").set_input_files(str(FIXTURES / "chelsea.png"))
    wait_for_photo(page, CAT)
    assert_frame_over_photo(page, "4:5", CAT, 4 / 5)
    page.wait_for_function("(want) => document.querySelector('#source-size').textContent === want", arg=size_text(CAT))
    page.get_by_role("radiogroup", name="Where the photo comes from").get_by_text("Image URL").click()
    wait_for_photo(page, CUP)

    # A picked storage image: the thumbnail's header gives the photo's own size.
    page.get_by_text("From a storage").click()
    page.get_by_role("link", name="catalogue").click()
    pick = page.get_by_role("button", name="Use astronaut.png")
    pick.wait_for()
    pick.click()
    wait_for_photo(page, ASTRONAUT)
    assert_frame_over_photo(page, "16:9", ASTRONAUT, 16 / 9)
    page.wait_for_function(
        "(want) => document.querySelector('#source-size').textContent === want", arg=size_text(ASTRONAUT)
    )
    page.audit.check("the shape picker over a picked storage photo")


def test_the_format_controls_work_without_javascript(stack, open_page):
    page = open_page(javascript=False)
    log_in(page, stack.base, MEMBER)
    assert page.locator("#shape-picker").is_visible()
    page.locator("#id_url").fill(stack.photos.url("/products/cup.jpg"))
    page.get_by_label("Prompt", exact=True).fill("slow zoom in")
    shape_label(page, "1:1").click()
    page.get_by_text("720p", exact=True).click()
    page.get_by_label("Seamless loop").check()
    page.get_by_label("Background", exact=True).select_option("colour")
    page.get_by_label("Background colour").fill("#336699")
    page.audit.check("the format controls without JavaScript")
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(re.compile(r".*/jobs/.*"))
    options = stack.shell(
        "from generator.models import Generation; import json; "
        "g = Generation.objects.order_by('-pk').first(); print(json.dumps([g.aspect_ratio, g.request['options']]))"
    )
    assert '"1:1"' in options
    assert '"resolution": "720p"' in options
    assert '"loop": true' in options
    assert '"background": "#336699"' in options
    page.audit.check("jobs after a no-JS submit")


CLEAR_EARLIER_JOBS = (
    "from django.utils import timezone; from generator.models import Generation; "
    "busy = Generation.objects.filter(status='PROCESSING').exists(); "
    "busy or Generation.objects.filter(deleted_at__isnull=True).update(deleted_at=timezone.now()); "
    "print('busy' if busy else 'cleared')"
)


def submit(page, base: str, photo_url: str, *, shape: str, resolution: str) -> None:
    page.goto(f"{base}/")
    page.locator("#id_url").fill(photo_url)
    page.get_by_label("Prompt", exact=True).fill("slow zoom in, light sweep")
    shape_label(page, shape).click()
    page.get_by_text(resolution, exact=True).click()
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(re.compile(r".*/jobs/.*"))


def play_the_only_video(page) -> dict:
    tile = page.locator("article.tile")
    assert tile.count() == 1
    tile.locator("a.play").click()
    tile.locator("video").wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('article.tile video'); return v && v.readyState >= 2 && v.videoWidth > 0; }",
        timeout=30_000,
    )
    page.wait_for_function("() => document.querySelector('article.tile video').currentTime > 0.3", timeout=20_000)
    return page.evaluate(
        "() => { const v = document.querySelector('article.tile video');"
        " return {width: v.videoWidth, height: v.videoHeight, duration: v.duration, error: v.error}; }"
    )


def test_chromium_plays_a_9_16_and_a_1_1_video_made_by_the_worker(stack, page):
    base = stack.base
    # The stack is shared by the module: an earlier test's job (a 1:1 from the no-JS form) must
    # finish and leave the gallery, so this test sees only its own two videos.
    assert wait_for(lambda: stack.shell(CLEAR_EARLIER_JOBS) == "cleared", 120, 1.0), stack.log_tail()
    log_in(page, base, MEMBER)
    cup = stack.photos.url("/products/cup.jpg")
    submit(page, base, cup, shape="9:16", resolution="1080p")
    time.sleep(1.1)  # the team may start one video per second
    submit(page, base, cup, shape="1:1", resolution="720p")
    page.audit.check("jobs with two shaped videos")

    def both_done() -> bool:
        statuses = stack.shell(
            "from generator.models import Generation; "
            "print(sorted(Generation.objects.filter(deleted_at__isnull=True).exclude(aspect_ratio='source')"
            ".values_list('status', flat=True)))"
        )
        assert "ERROR" not in statuses, stack.log_tail()
        return statuses == "['DONE', 'DONE']"

    assert wait_for(both_done, 300, 1.0), stack.log_tail()

    page.goto(f"{base}/gallery/")
    page.audit.check("gallery with both videos")
    page.evaluate("window.__noReload = 1")
    page.get_by_label("Shape").select_option("9:16")
    page.wait_for_function("() => document.querySelectorAll('article.tile').length === 1")
    assert page.evaluate("window.__noReload") == 1  # filtered in place by htmx
    assert "shape=9%3A16" in page.url
    tile = page.locator("article.tile")
    assert tile.locator('.badge-shape[data-shape="9:16"]').text_content() == "Shape: 9:16"
    vertical = play_the_only_video(page)
    assert (vertical["width"], vertical["height"]) == (1080, 1920), vertical
    assert vertical["error"] is None
    assert vertical["duration"] == pytest.approx(5.0, abs=0.05)
    page.audit.check("gallery, a 9:16 video playing")

    page.goto(f"{base}/gallery/?shape=1:1")
    tile = page.locator("article.tile")
    assert tile.locator('.badge-shape[data-shape="1:1"]').text_content() == "Shape: 1:1"
    assert tile.locator(".badge-shape", has_text="720p").count() == 1
    square = play_the_only_video(page)
    assert (square["width"], square["height"]) == (720, 720), square
    assert square["error"] is None
    shot(page, "gallery-square")
    page.audit.check("gallery, a 1:1 video playing")


def test_the_test_browser_resolves_no_host_name(stack, browser):
    # The shape picker loads typed URLs in the browser; in tests no name may be looked up (the network rule).
    context = browser.new_context()
    try:
        page = context.new_page()
        failed = []
        page.on("requestfailed", lambda request: failed.append((request.url, request.failure)))
        with pytest.raises(Exception, match="ERR_NAME_NOT_RESOLVED"):
            page.goto(stack.base.replace("127.0.0.1", "localhost") + "/accounts/login/")
        assert failed
        assert all("ERR_NAME_NOT_RESOLVED" in str(failure) for _url, failure in failed)
        by_address = context.new_page()  # the same server by its address is reached
        assert by_address.goto(stack.base + "/accounts/login/").status == 200
    finally:
        context.close()
