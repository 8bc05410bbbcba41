"""An upstream engine in a real browser (docs/engines.md): connect a Claid stand-in on the Engines page,
pick it on Generate, watch the job reach done, and play its video in the gallery.

The stand-in (tests/test_upstream_claid.py's FakeClaid) follows Claid's documented shapes on
loopback and serves a real H.264 file, so the stack's worker and ticker submit, poll, download,
probe and remux for real. Every page is audited with axe-core at 1360 px and 390 px.
"""

from __future__ import annotations

import re

import pytest

from tests.browser_support import BALANCE, OWNER, PHONE, WIDE, Stack, log_in, shot
from tests.loopback import CLAID_KEY, LoopbackServer, claid_account
from tests.test_browser_ux import assert_fits_the_phone
from tests.test_upstream_claid import FakeClaid

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def claid():
    server = LoopbackServer()
    fake = FakeClaid(server)
    server.routes["/v1/account"] = claid_account  # the key is checked, as Claid does
    yield fake
    server.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, claid):
    # The stand-in is the only address the stack may reach: the engine's base_url and the photo.
    allowed = {"GENERATOR_FETCH_ALLOW_HOSTS": f"127.0.0.1:{claid.server.port}"}
    running = Stack(tmp_path_factory.mktemp("browser-engines"), seed_count=3, env=allowed)
    yield running
    running.stop()


def test_connect_a_claid_engine_pick_it_on_generate_and_play_what_it_made(stack, claid, page):
    base = stack.base
    log_in(page, base, OWNER)

    page.goto(f"{base}/engines/")
    page.audit.check("engines, nothing connected")
    page.get_by_label("Name", exact=True).fill("claid-studio")
    page.get_by_label("Type").select_option("claid")
    page.get_by_label("API key").fill("not-the-key")
    page.locator("details.advanced summary").click()
    page.get_by_label("API address (optional)").fill(claid.server.url("").rstrip("/"))
    page.get_by_role("button", name="Test and connect").click()
    # A refused key: the upstream's reason on the key's field, what was typed kept.
    page.locator("#id_api_key_error").wait_for()
    assert "The engine answered" in page.locator("#id_api_key_error").inner_text()
    page.audit.check("engines, a refused key")
    page.get_by_label("API key").fill(CLAID_KEY)
    page.get_by_role("button", name="Test and connect").click()
    page.get_by_text("Connected claid-studio.").wait_for()
    row = page.locator("#engine-claid-studio")
    assert "Claid.ai" in row.inner_text()
    row.get_by_role("button", name="Test claid-studio").click()
    page.get_by_text("Connection works").wait_for()
    page.audit.check("engines, connected and tested")
    shot(page, "engines", full_page=True)
    page.set_viewport_size(PHONE)  # the Engines table and Generate's engine cards fit a phone
    for path in ("/engines/", "/"):
        page.goto(f"{base}{path}")
        page.audit.check()
        assert_fits_the_phone(page, path)
    page.set_viewport_size(WIDE)

    page.goto(f"{base}/")
    page.locator("#id_url").fill(claid.server.url("/photo.png"))
    page.get_by_label("Prompt", exact=True).fill("steam rising from the cup")
    page.locator('label:has(input[name="engine"][value="claid-studio"])').click()
    # Claid has no shape option: a fixed shape is refused before anything is sent.
    page.locator('label.shape:has(input[value="9:16"])').click()
    problem = page.locator("#engine-problem")
    problem.wait_for()
    assert "cannot make 9:16" in problem.inner_text()
    page.audit.check("generate, a shape the engine cannot make")
    page.evaluate(
        "() => window.scrollTo(0, document.getElementById('id_engine').getBoundingClientRect().top + scrollY - 120)"
    )
    shot(page, "generate-engine")
    page.locator('label.shape:has(input[value="source"])').click()
    assert problem.is_hidden()
    assert page.locator("[data-cost]").inner_text() == "35"
    balance_before = int(stack.shell(BALANCE))
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(re.compile(r".*/jobs/.*"))
    page.audit.check("jobs, the job just sent")

    job = stack.shell(
        "from generator.models import Generation; g = Generation.objects.order_by('-pk').first(); "
        "print(g.uuid, g.engine_info.get('name'), g.cost)"
    ).split()
    assert job[1:] == ["claid-studio", "35"]
    page.goto(f"{base}/jobs/{job[0]}/")
    assert "claid-studio · Claid.ai" in page.locator("#job-engine").inner_text()
    page.locator(f'#job-{job[0]}[data-status="DONE"]').wait_for(timeout=120_000)  # the row polls itself
    page.reload()
    assert page.locator("#job-upstream-id").inner_text() == "7"
    page.audit.check("the job, done")
    assert claid.submits() == 1

    page.get_by_role("link", name="see it in the gallery").click()
    video = page.locator("article.tile video")
    video.wait_for()
    page.audit.check("the gallery, one video")
    page.evaluate("() => { const v = document.querySelector('article.tile video'); v.muted = true; v.play(); }")
    page.wait_for_function("() => document.querySelector('article.tile video').currentTime > 0.5", timeout=30_000)
    played = page.evaluate(
        "() => { const v = document.querySelector('article.tile video'); return [v.videoWidth, v.videoHeight, v.duration]; }"
    )
    assert played[:2] == [64, 48]
    assert played[2] == pytest.approx(5.0, abs=0.3)

    page.goto(f"{base}/gallery/?engine=claid-studio")
    assert page.locator("article.tile").count() == 1
    page.audit.check("the gallery, filtered by engine")
    page.goto(f"{base}/credits/")
    assert "claid-studio" in page.locator("#by-engine").inner_text()
    page.audit.check("credits by engine")
    assert int(stack.shell(BALANCE)) == balance_before - 35  # held once at the engine's price, not refunded
    assert page.locator("#credits-balance").inner_text() == str(balance_before - 35)
