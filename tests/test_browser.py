"""The product in a real browser: Debian's Chromium driven by Playwright against a real web server
process and a real qcluster worker sharing one file SQLite database (tests/browser_support.py).

Every page a test shows is audited with axe-core at 1360 px and 390 px, and must raise no
JavaScript or server error.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.browser_support import BALANCE, FIXTURES, MEMBER, OWNER, PASSWORD, PHONE, STAFF, log_in, shot, wait_for

pytestmark = pytest.mark.slow


def test_member_submits_a_photo_watches_it_render_and_plays_the_video(stack, page):
    base = stack.base
    page.goto(f"{base}/accounts/login/")
    shot(page, "login")
    log_in(page, base, MEMBER)
    assert page.locator("#balance").inner_text().startswith(page.locator("#generate-balance").inner_text())

    page.locator("#id_url").fill(stack.photos.url("/products/cup.jpg"))
    page.get_by_label("Prompt", exact=True).fill("slow zoom in, light sweep")
    page.get_by_text("5 seconds").click()
    shot(page, "generate", full_page=True)
    page.get_by_role("button", name="Generate video").click()

    page.wait_for_url(re.compile(r".*/jobs/.*"))
    page.evaluate("window.__noReload = 'still here'")
    row = page.locator(".job").first
    assert row.get_attribute("data-status") == "PROCESSING"
    page.audit.check("jobs, while the job renders")
    progress_seen, shots_taken = set(), set()

    def finished() -> bool:
        status = row.get_attribute("data-status")
        value = (
            row.locator("[role=progressbar]").first.get_attribute("aria-valuenow") if status == "PROCESSING" else None
        )
        if value is not None:
            progress_seen.add(int(value))
            if 20 <= int(value) < 90 and not shots_taken:
                shots_taken.add(value)
                page.evaluate("window.scrollTo(0, 0)")
                shot(page, "jobs")
        return status in {"DONE", "ERROR"}

    assert wait_for(finished, 240, 0.25), stack.log_tail()
    assert row.get_attribute("data-status") == "DONE", row.inner_text()
    assert page.evaluate("window.__noReload") == "still here"  # updated by htmx, never reloaded
    assert len(progress_seen) >= 2
    assert row.locator("[role=progressbar]").get_attribute("aria-valuenow") == "100"

    page.audit.check("jobs, the job done")
    page.get_by_role("link", name="Gallery").first.click()
    page.wait_for_url(re.compile(r".*/gallery/.*"))
    page.audit.check()
    first = page.locator("article.tile").first
    assert "slow zoom in, light sweep" in first.inner_text()
    assert "Mia Chen" in first.inner_text()
    first.locator("a.play").click()
    video = first.locator("video")
    video.wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('article.tile video'); return v && v.readyState >= 1 && v.duration > 0; }",
        timeout=30_000,
    )
    duration = page.evaluate("() => document.querySelector('article.tile video').duration")
    assert abs(duration - 5.0) < 0.05
    assert page.evaluate("() => document.querySelector('article.tile video').error") is None
    page.wait_for_function(
        "() => document.querySelector('article.tile video').currentTime > 0.3",
        timeout=20_000,
    )
    shot(page, "gallery")
    page.audit.check("gallery, a video playing")


def test_member_browses_the_gallery_with_filters_pagination_and_expired_items(stack, page):
    base = stack.base
    log_in(page, base, MEMBER)
    page.goto(f"{base}/gallery/")
    page.audit.check()
    tiles = page.locator("article.tile")
    assert tiles.count() == 24
    assert "Page 1 of 2" in page.locator(".pagination").inner_text()
    assert page.get_by_text("Owen Park").count() > 0  # another member's videos are listed

    expired = page.locator("article.tile.expired")
    assert expired.count() == 0  # the expired seed item is the oldest: on the last page
    page.get_by_role("link", name="Older →").click()
    page.wait_for_url(re.compile(r".*page=2.*"))
    page.audit.check()
    expired = page.locator("article.tile.expired")
    assert expired.count() == 1
    assert expired.locator("a.play").count() == 0
    assert expired.locator("video").count() == 0
    assert "Expired" in expired.inner_text()
    grey = expired.locator("img").evaluate("img => getComputedStyle(img).filter")
    assert "grayscale" in grey
    shot(page, "gallery-expired", full_page=True)

    page.goto(f"{base}/gallery/")
    page.evaluate("window.__noReload = 1")
    page.get_by_label("Status").select_option("ERROR")
    page.wait_for_function("() => document.querySelectorAll('article.tile').length < 24")
    assert page.evaluate("window.__noReload") == 1  # filtered in place by htmx
    assert "status=ERROR" in page.url
    page.audit.check("gallery filtered by htmx")
    statuses = page.locator("article.tile").evaluate_all("els => els.map(e => e.dataset.status)")
    assert statuses
    assert set(statuses) == {"ERROR"}

    page.get_by_label("Status").select_option("")
    page.wait_for_function("() => document.querySelectorAll('article.tile').length === 24")
    page.audit.check("gallery, filters cleared by htmx")
    page.get_by_label("Member").select_option(label="Owen Park")
    page.wait_for_function("() => document.querySelectorAll('article.tile').length < 24")
    owners = page.locator("article.tile .tile-who").all_inner_texts()
    assert owners
    assert set(owners) == {"Owen Park"}
    page.audit.check("gallery filtered by member")


def test_pages_fit_a_phone_screen_without_sideways_scrolling(stack, page):
    base = stack.base
    log_in(page, base, MEMBER)
    page.set_viewport_size(PHONE)
    for name, path in [
        ("generate", "/"),
        ("jobs", "/jobs/"),
        ("gallery", "/gallery/"),
        ("credits", "/credits/"),
    ]:
        page.goto(f"{base}{path}")
        page.audit.check()
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))"
        )
        assert overflow <= 0, f"{path} is {overflow} px wider than the phone screen: {wide}"
        if name == "gallery":
            shot(page, "gallery-phone")


def test_admin_grants_500_credits_and_the_member_sees_balance_and_reason(stack, open_page):
    base = stack.base
    before = int(stack.shell(BALANCE))
    admin = open_page()
    admin.goto(f"{base}/admin/")
    admin.audit.check("admin login")
    admin.get_by_label("Email").fill(STAFF)
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.wait_for_url(f"{base}/admin/")
    admin.audit.check()
    admin.goto(f"{base}/admin/generator/team/")
    admin.audit.check()
    admin.locator("tr", has_text="Acme Studio").locator("input[name=_selected_action]").check()
    admin.locator("select[name=action]").select_option("grant_credits")
    admin.get_by_role("button", name="Go").click()
    admin.get_by_label("Amount").wait_for()
    admin.audit.check("admin grant form")
    admin.get_by_label("Amount").fill("500")
    admin.get_by_label("Reason").fill("Spring campaign top-up")
    shot(admin, "admin-grant")
    admin.get_by_role("button", name="Apply").click()
    assert "+500 credits" in admin.locator(".messagelist").inner_text()
    admin.audit.check("admin after the grant")

    page = open_page()
    log_in(page, base, MEMBER)
    page.get_by_role("link", name="Credits", exact=True).click()
    page.wait_for_url(f"{base}/credits/")
    page.audit.check()
    balance = int(page.locator("#credits-balance").inner_text())
    assert balance == before + 500
    line = page.locator("#ledger tbody tr").first
    assert "Spring campaign top-up" in line.inner_text()
    assert "+500" in line.inner_text()
    assert "Ada Admin" in line.inner_text()
    shot(page, "credits", full_page=True)

    # The owner's view of the management pages, for the README.
    page = open_page()
    log_in(page, base, OWNER)
    for name, path in [
        ("team", "/team/"),
        ("storage-browse", "/storages/1/browse"),
    ]:
        page.goto(f"{base}{path}")
        page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        page.audit.check()
        shot(page, name)
    page.goto(f"{base}/storages/")
    page.evaluate("window.__noReload = 1")
    page.get_by_role("button", name="Test connection").click()  # an htmx POST: CSRF comes from <body>
    page.get_by_text("Connection works.").wait_for()
    assert page.evaluate("window.__noReload") == 1
    assert page.locator(".steps li.ok").count() >= 3
    page.audit.check("storages with a test result")
    shot(page, "storages")
    page.goto(f"{base}/keys/")
    page.audit.check()
    page.get_by_label("Name").fill("Shop import script")
    page.get_by_role("button", name="Create key").click()
    assert page.locator("#raw-key").inner_text().startswith("iv_")
    page.audit.check("keys with the new key")
    shot(page, "keys")


def test_member_picks_a_photo_in_the_storage_browser_and_uploads_another(stack, page):
    base = stack.base
    log_in(page, base, MEMBER)
    page.get_by_text("From a storage").click()
    page.get_by_role("link", name="catalogue").click()
    page.locator("#picker").get_by_role("link", name="mugs").click()
    pick = page.get_by_role("button", name="Use coffee-mug.png")
    pick.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#picker img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    pick.click()
    page.audit.check("the storage picker")
    assert page.locator("#id_storage_input").input_value() == "storage://catalogue/mugs/coffee-mug.png"
    page.get_by_label("Prompt", exact=True).fill("orbit, sparkle")
    shot(page, "generate-storage-picker")
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(re.compile(r".*/jobs/.*"))
    assert "orbit, sparkle" in page.locator(".job").first.inner_text()
    page.audit.check()

    time.sleep(1.1)  # the team may start one video per second
    page.goto(f"{base}/")
    page.audit.check()
    page.get_by_text("Upload", exact=True).click()
    page.get_by_label("Image file").set_input_files(str(FIXTURES / "chelsea.png"))
    page.get_by_label("Prompt", exact=True).fill("gentle float")
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(re.compile(r".*/jobs/.*"))
    assert "gentle float" in page.locator(".job").first.inner_text()
    inputs = stack.shell(
        "from generator.models import Generation; "
        "print([g.request['input'] for g in Generation.objects.order_by('-pk')[:2]])"
    )
    assert "storage://catalogue/mugs/coffee-mug.png" in inputs
    assert "storage://uploads/" in inputs
