"""The dashboard as a marketing team lives in it (issue 13), in a real browser at 1360 and 390 px.

One web server + worker for the module (tests/browser_support.py). Every page a test shows is
audited with axe-core at both widths and must raise no JavaScript or server error. Each test names
the issue item it covers.
"""

from __future__ import annotations

import re

import pytest

from tests.browser_support import MEMBER, OWNER, PHONE, WIDE, log_in, shot

pytestmark = pytest.mark.slow

LONG_NAME = "summer-collection_linen-shirt.blue-2026.png"

EXTRA_SEED = r"""
import shutil
from pathlib import Path
from django.conf import settings
from generator.models import Generation, Storage, Team
team = Team.objects.get(slug="acme-studio")
root = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / team.slug / "catalogue"
shutil.copy(root / "coffee.png", root / "mugs" / "{long_name}")
done = Generation.objects.filter(team=team, status="DONE").order_by("-created_at").first()
done.request = dict(done.request, output="storage://catalogue/campaigns/2026/spring-summer/social-media/instagram-reels/")
done.save(update_fields=["request"])
print(done.uuid)
"""

# Elements sticking out past the right edge of the screen (ignoring ones clipped by a scrolling parent).
OVERFLOWING = """() => {
  const width = window.innerWidth;
  const clipped = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o !== 'visible' && p.getBoundingClientRect().right <= width + 1) return true; }
    return false; };
  return [...document.querySelectorAll('body *')].filter(el => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.height > 0 && r.right > width + 1 && !clipped(el);
    }).slice(0, 6).map(el => `${el.tagName.toLowerCase()}.${el.className} ${Math.round(el.getBoundingClientRect().right)}px`);
}"""


@pytest.fixture(scope="module")
def seeded(stack):
    """Module data on top of the standard seed: a long file name, a job with a long output path."""
    return {"long_output_job": stack.shell(EXTRA_SEED.format(long_name=LONG_NAME))}


def assert_fits_the_phone(page, label: str) -> None:
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{label} is {overflow} px wider than the phone: {page.evaluate(OVERFLOWING)}"
    assert page.evaluate(OVERFLOWING) == [], label


# --- item 10: the phone ------------------------------------------------------------------------------


def test_item10_every_page_fits_a_phone_with_a_menu_stacked_tables_and_wrapping_names(stack, seeded, open_page):
    page = open_page(viewport=PHONE)
    log_in(page, stack.base, OWNER)
    page.goto(f"{stack.base}/keys/")
    page.audit.check()
    page.get_by_label("Name").fill("Phone check")
    page.get_by_role("button", name="Create key").click()
    page.locator("#raw-key").wait_for()
    page.audit.check("keys with a new key shown")
    assert_fits_the_phone(page, "keys with a new key")

    # The menu: collapsed behind a button that says whether it is open; every link reachable.
    toggle = page.get_by_role("button", name="Menu")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert not page.get_by_role("link", name="Team", exact=True).is_visible()
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    assert links.count() == 8
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box["x"] >= 0, links.nth(i).inner_text()
        assert box["x"] + box["width"] <= PHONE["width"], links.nth(i).inner_text()
    shot(page, "phone-menu")
    page.audit.check("keys with the menu open")
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert page.evaluate("() => document.activeElement.hasAttribute('data-nav-toggle')")

    for path in [
        "/",
        "/jobs/",
        f"/jobs/{seeded['long_output_job']}/",
        "/gallery/",
        "/storages/",
        "/storages/1/browse?folder=mugs/",
        "/credits/",
        "/team/",
    ]:
        page.goto(f"{stack.base}{path}")
        page.audit.check()
        assert_fits_the_phone(page, path)
        if path == "/":
            form = page.locator("#generate-form").bounding_box()
            ten = page.locator("label", has_text="10 seconds").bounding_box()
            assert ten["x"] + ten["width"] <= form["x"] + form["width"], "the 10 s card pokes out of the form"
            shot(page, "phone-generate", full_page=True)
        if path == "/team/":
            # Stacked cards: each value carries its column's name; the Actions header is not a stray column.
            assert page.locator("thead").first.evaluate("e => e.getBoundingClientRect().width") <= 1
            label = page.locator("#main td[data-label='Role']").first.evaluate(
                "td => getComputedStyle(td, '::before').content"
            )
            assert label == '"Role"'
            shot(page, "phone-team", full_page=True)
        if "browse" in path:
            name = page.locator(".browser-name", has_text="linen").first
            breaks = name.evaluate(
                """el => { const text = el.textContent, node = document.createRange(), tops = [];
                  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT); let offset = 0, out = [];
                  while (walker.nextNode()) { const t = walker.currentNode;
                    for (let i = 0; i < t.length; i++) { node.setStart(t, i); node.setEnd(t, i + 1);
                      const top = Math.round(node.getBoundingClientRect().top);
                      if (tops.length && top > tops[tops.length - 1] + 2) out.push(text[offset + i - 1]);
                      tops.push(top); }
                    offset += t.length; }
                  return out; }"""
            )
            assert breaks, "the long name should need more than one line on a phone"
            assert set(breaks) <= set("-_./"), f"a file name broke mid-word after {breaks}"


def test_item10_without_javascript_the_menu_is_open_and_wraps_on_a_phone(stack, open_page):
    page = open_page(viewport=PHONE, javascript=False)
    log_in(page, stack.base, MEMBER)
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Generate", "Jobs", "Gallery", "Storages", "Credits", "API keys", "Team"):
        link = nav.get_by_role("link", name=name, exact=True)
        assert link.is_visible(), name
        box = link.bounding_box()
        assert box["x"] + box["width"] <= PHONE["width"], name
    assert not page.get_by_role("button", name="Menu").is_visible()
    assert_fits_the_phone(page, "generate without JS")
    page.set_viewport_size(WIDE)
    assert re.search(r"/$", page.url)
