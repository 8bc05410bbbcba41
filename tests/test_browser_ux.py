"""The dashboard as a marketing team lives in it (issue 13), in a real browser at 1360 and 390 px.

One web server + worker for the module (tests/browser_support.py). Every page a test shows is
audited with axe-core at both widths and must raise no JavaScript or server error. Each test names
the issue item it covers.
"""

from __future__ import annotations

import re
import time

import pytest

from generator.context_processors import NAV_ITEMS
from tests.browser_support import MEMBER, OWNER, PASSWORD, PHONE, WIDE, log_in, shot

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
    assert links.count() == len(NAV_ITEMS)
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
        "/engines/",
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
    for _key, name, _url in NAV_ITEMS:
        link = nav.get_by_role("link", name=name, exact=True)
        assert link.is_visible(), name
        box = link.bounding_box()
        assert box["x"] + box["width"] <= PHONE["width"], name
    assert not page.get_by_role("button", name="Menu").is_visible()
    assert_fits_the_phone(page, "generate without JS")
    page.set_viewport_size(WIDE)
    assert re.search(r"/$", page.url)


# --- helpers for the form items -----------------------------------------------------------------------

COUNT = "from generator.models import {model}; print({model}.objects.filter({filter}).count())"


def count(stack, model: str, filter: str = "") -> int:
    return int(stack.shell(COUNT.format(model=model, filter=filter)))


def end_session(stack, page) -> None:
    """End the browser's session on the server, as an expiry would (the cookie stays, the session is gone)."""
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    stack.shell(
        f"from django.contrib.sessions.models import Session; Session.objects.filter(session_key={key!r}).delete()"
    )


def fill_generate(page, *, url: str, prompt: str, negative: str = "", ten: bool = False) -> None:
    page.get_by_text("Image URL", exact=True).first.click()
    page.locator("#id_url").fill(url)
    page.get_by_label("Prompt", exact=True).fill(prompt)
    if negative:
        page.get_by_label("Negative prompt (optional)").fill(negative)
    page.get_by_text("10 seconds" if ten else "5 seconds").click()


def wait_a_rate_second() -> None:
    time.sleep(1.1)  # the team may start one video per second


# --- item 1: a lapsed session keeps the form ------------------------------------------------------------


def test_item1_a_lapsed_session_keeps_the_generate_form_through_the_login(stack, page):
    log_in(page, stack.base, MEMBER)
    before = count(stack, "Generation")
    fill_generate(
        page, url=stack.photos.url("/products/cup.jpg"), prompt="slow zoom out, light sweep", negative="shake", ten=True
    )
    end_session(stack, page)
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(re.compile(r".*/accounts/login/\?next=/$"))
    page.audit.check("login after the session ended")
    page.get_by_label("Email").fill(MEMBER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{stack.base}/")
    page.audit.check("the form kept through the login")
    assert "Your session had ended, so nothing was sent" in page.locator("#refusal").inner_text()
    assert page.locator("#id_url").input_value() == stack.photos.url("/products/cup.jpg")
    assert page.get_by_label("Prompt", exact=True).input_value() == "slow zoom out, light sweep"
    assert page.get_by_label("Negative prompt (optional)").input_value() == "shake"
    assert page.locator("input[name=duration][value='10']").is_checked()
    assert count(stack, "Generation") == before  # nothing was sent

    # /generate/ itself answers GET with the form (a bookmark, or the login's `next`).
    response = page.goto(f"{stack.base}/generate/")
    assert response.status == 200
    page.audit.check()
    assert page.get_by_label("Prompt", exact=True).input_value() == "slow zoom out, light sweep"
    wait_a_rate_second()
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(re.compile(r".*/jobs/"))
    page.audit.check()
    assert count(stack, "Generation") == before + 1


# --- item 2: Post/Redirect/Get everywhere -----------------------------------------------------------------


def test_item2_every_successful_post_redirects_and_a_reload_repeats_nothing(stack, page):
    log_in(page, stack.base, OWNER)
    page.goto(f"{stack.base}/keys/")
    page.audit.check()
    keys = count(stack, "ApiKey")
    page.get_by_label("Name").fill("Reload check")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_url(f"{stack.base}/keys/#new-key")
    page.audit.check()
    assert page.locator("#raw-key").inner_text().startswith("iv_")
    page.reload()
    page.audit.check("keys after a reload")
    assert count(stack, "ApiKey") == keys + 1  # the reload created no second key
    assert page.locator("#raw-key").count() == 0  # and the secret was shown once only

    page.goto(f"{stack.base}/team/")
    page.audit.check()
    invites = count(stack, "Invite")
    page.get_by_label("Email").fill("nina@example.com")
    page.get_by_role("button", name="Create invite link").click()
    page.wait_for_url(f"{stack.base}/team/#invite-created")
    page.audit.check()
    assert "/invite/" in page.locator("#invite-link").inner_text()
    page.reload()
    page.audit.check("team after a reload")
    assert count(stack, "Invite") == invites + 1
    assert page.locator("#invite-link").count() == 0

    # An errored Generate form comes back at / (a GET): a reload resends nothing and keeps the values.
    page.goto(f"{stack.base}/")
    page.audit.check()
    jobs = count(stack, "Generation")
    fill_generate(page, url=stack.photos.url("/products/cup.jpg"), prompt="ab")
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(f"{stack.base}/")
    page.audit.check("generate with an error")
    assert page.locator("[data-error-summary]").is_visible()
    page.reload()
    page.audit.check("generate with an error, reloaded")
    assert page.get_by_label("Prompt", exact=True).input_value() == "ab"
    assert count(stack, "Generation") == jobs

    # A sent form, then Back: the form page again, nothing resent.
    page.get_by_label("Prompt", exact=True).fill("gentle float")
    wait_a_rate_second()
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(re.compile(r".*/jobs/"))
    page.audit.check()
    page.go_back()
    page.wait_for_url(f"{stack.base}/")
    page.audit.check("generate after Back")
    page.reload()
    page.audit.check("generate after Back and a reload")
    assert count(stack, "Generation") == jobs + 1

    # The batch form too: an error comes back at a GET, so a reload resends nothing and keeps the list.
    batches = count(stack, "Batch")
    page.goto(f"{stack.base}/?mode=batch")
    page.audit.check()
    page.locator("#batch-form label", has_text="A list of URLs").click()
    page.locator("#id_url_list").fill("https://shop.example/a.jpg\nftp://shop.example/b.jpg")
    page.get_by_label("Prompt", exact=True).fill("slow zoom in")
    page.get_by_role("button", name="Start batch").click()
    page.wait_for_url(f"{stack.base}/?mode=batch")
    page.audit.check("batch with an error")
    assert "Entry 2: only http and https URLs are allowed" in page.locator("#batch-form").inner_text()
    page.reload()
    page.audit.check("batch with an error, reloaded")
    assert "ftp://shop.example/b.jpg" in page.locator("#id_url_list").input_value()
    assert count(stack, "Batch") == batches


# --- item 3: double submits -----------------------------------------------------------------------------


def test_item3_quick_clicks_and_a_resent_form_start_one_job_charged_once(stack, page):
    log_in(page, stack.base, MEMBER)
    jobs, holds = count(stack, "Generation"), count(stack, "CreditLedger", "kind='hold'")
    wait_a_rate_second()
    fill_generate(page, url=stack.photos.url("/products/cup.jpg"), prompt="three quick clicks")
    page.get_by_role("button", name="Generate video").click(click_count=3, delay=30)
    page.wait_for_url(re.compile(r".*/jobs/"))
    page.audit.check()
    assert "Too many videos" not in page.content()
    assert count(stack, "Generation") == jobs + 1
    assert count(stack, "CreditLedger", "kind='hold'") == holds + 1

    # Without the button's guard (no JS, a flaky connection): the same form sent three times at once.
    page.goto(f"{stack.base}/")
    page.audit.check()
    wait_a_rate_second()
    fill_generate(page, url=stack.photos.url("/products/cup.jpg"), prompt="the same form, thrice")
    answers = page.evaluate(
        """async () => {
          const form = document.getElementById('generate-form');
          const send = () => fetch(form.action, {method: 'POST', body: new FormData(form)}).then(r => r.text());
          return Promise.all([send(), send(), send()]);
        }"""
    )
    assert len(answers) == 3
    assert not any("Too many videos" in answer for answer in answers)
    assert count(stack, "Generation") == jobs + 2  # one more job for three posts
    assert count(stack, "CreditLedger", "kind='hold'") == holds + 2
    page.goto(f"{stack.base}/jobs/")
    page.audit.check()


# --- item 5: what was typed survives every error; roles save on their own -------------------------------------


def test_item5_typed_values_survive_errors_and_a_role_change_saves_by_itself(stack, page):
    log_in(page, stack.base, OWNER)
    page.goto(f"{stack.base}/storages/")
    page.audit.check()
    page.get_by_label("Name", exact=True).fill("shop-s3")
    page.get_by_label("Type").select_option("s3")
    page.get_by_label("Bucket").fill("x")
    page.get_by_label("Access key", exact=True).fill("AKIAEXAMPLE")
    page.get_by_label("Secret access key").fill("my-secret-value-123")
    page.get_by_role("button", name="Test and connect").click()
    page.wait_for_url(f"{stack.base}/storages/")
    page.audit.check("storages with an error")
    assert page.get_by_label("Bucket").input_value() == "x"
    assert page.get_by_label("Secret access key").input_value() == "my-secret-value-123"
    assert page.get_by_label("Access key", exact=True).input_value() == "AKIAEXAMPLE"
    error = page.locator("#id_bucket_error").inner_text()
    assert "A bucket name has 3 to 222 characters" in error
    assert "(“x” has 1)" in error
    assert page.evaluate("() => document.activeElement.id") == "id_bucket"

    page.goto(f"{stack.base}/team/")
    page.audit.check()
    page.get_by_label("URL").fill("http://10.1.2.3/hooks/video")
    with page.expect_navigation():
        page.get_by_role("button", name="Save webhook").click()
    page.audit.check("team with a webhook error")
    assert page.get_by_label("URL").input_value() == "http://10.1.2.3/hooks/video"
    assert "webhooks can only go to a public address" in page.locator("#id_webhook_url_error").inner_text()

    role = page.get_by_label("Role of Mia Chen")
    role.select_option("admin")  # no Save click: the change saves itself
    page.wait_for_load_state("load")
    page.get_by_text("Updated Mia Chen").wait_for()
    page.audit.check("team after a role change")
    assert page.get_by_label("Role of Mia Chen").input_value() == "admin"
    assert (
        stack.shell(
            "from generator.models import Membership; print(Membership.objects.get(user__email='mia@example.com', team__slug='acme-studio').role)"
        )
        == "admin"
    )
    page.get_by_label("Role of Mia Chen").select_option("member")
    page.get_by_text("Updated Mia Chen").wait_for()
    assert page.get_by_label("Role of Mia Chen").input_value() == "member"


# --- item 6: errors in plain words, a summary, focus on the first ---------------------------------------------


def test_item6_errors_say_what_to_do_next_to_each_field_with_a_summary_and_focus(stack, page):
    stack.shell(
        "from generator.models import Membership, Team, User; "
        "u = User.objects.create_user(email='cam@example.com', password='" + PASSWORD + "', name='Cam Capped'); "
        "Membership.objects.create(team=Team.objects.get(slug='acme-studio'), user=u, role='member', monthly_cap=30); print('ok')"
    )
    log_in(page, stack.base, MEMBER)
    fill_generate(page, url="http://shop.example:8080/cup.jpg", prompt="ab")
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(f"{stack.base}/")
    page.audit.check("generate with two errors")
    summary = page.locator("[data-error-summary]")
    assert "There are 2 problems" in summary.inner_text()
    assert page.evaluate("() => document.activeElement.id") == "id_url"  # the first field in error
    url_error = page.locator("#id_url_error").inner_text()
    assert "This link uses port 8080" in url_error
    assert "standard web ports (80 and 443)" in url_error
    assert page.locator("#id_prompt_error").inner_text().endswith("Enter a prompt of at least 3 characters.")
    assert page.locator("#id_prompt").get_attribute("aria-invalid") == "true"
    assert "id_prompt_error" in page.locator("#id_prompt").get_attribute("aria-describedby")
    summary.get_by_role("link", name="Enter a prompt of at least 3 characters.").click()
    assert page.evaluate("() => document.activeElement.id") == "id_prompt"
    shot(page, "generate-errors", full_page=True)

    capped = page.context.browser.new_context(viewport=PHONE)
    try:
        other = capped.new_page()
        other.audit = type(page.audit)(other)
        log_in(other, stack.base, "cam@example.com")
        fill_generate(other, url=stack.photos.url("/products/cup.jpg"), prompt="over the cap")
        other.get_by_role("button", name="Generate video").click()
        other.wait_for_url(f"{stack.base}/")
        other.audit.check("generate refused by the cap")
        assert (
            "You have used 0 of your 30 credits this month; this video costs 35."
            in other.locator("#refusal").inner_text()
        )
        other.audit.finish()
    finally:
        capped.close()


# --- item 4: destructive actions ask first, without JavaScript too --------------------------------------------

CONFIRM_SEED = r"""
from generator.models import Membership, Storage, Team, User
team = Team.objects.get(slug="acme-studio")
owen = User.objects.get(email="owen@example.com")
rita = User.objects.create_user(email="rita@example.com", password="x-unused-password-1", name="Rita Ray")
Membership.objects.create(team=team, user=rita, role="member")
Storage.objects.create(team=team, name="old-bucket", type="local", parameters={"path": "old"}, created_by=owen)
print("ok")
"""


def confirm(page, summary: str, question: str, yes: str) -> None:
    """Open a confirm step, check that opening it did nothing yet, and confirm."""
    opener = page.locator("summary", has_text=summary).first
    opener.click()
    panel = opener.locator("xpath=..").locator(".confirm-panel")
    assert question in panel.inner_text()
    page.audit.check(f"confirm step: {summary}")
    assert_fits_the_phone_when_narrow(page, summary)
    with page.expect_navigation():
        panel.get_by_role("button", name=yes).click()


def assert_fits_the_phone_when_narrow(page, label: str) -> None:
    if page.viewport_size["width"] <= PHONE["width"]:
        assert_fits_the_phone(page, label)


def test_item4_delete_revoke_disconnect_remove_and_leave_ask_first_without_javascript(stack, open_page):
    stack.shell(CONFIRM_SEED)
    page = open_page(viewport=PHONE, javascript=False)
    log_in(page, stack.base, OWNER)

    page.goto(f"{stack.base}/keys/")
    page.audit.check()
    page.get_by_label("Name").fill("Old shop plugin")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_url(re.compile(r".*/keys/"))
    page.audit.check("keys with a new key")
    revoke = page.get_by_text("Revoke Old shop plugin…")  # the accessible name says which key
    assert revoke.is_visible()
    assert not page.get_by_role("button", name="Yes, revoke the key").first.is_visible()  # nothing sent by one click
    confirm(
        page, "Old shop plugin", "Revoke “Old shop plugin”? Programs that use it are refused", "Yes, revoke the key"
    )
    page.audit.check("keys after a revoke")
    assert count(stack, "ApiKey", "name='Old shop plugin', revoked_at__isnull=False") == 1
    shot(page, "phone-keys-revoked", full_page=True)

    page.goto(f"{stack.base}/storages/")
    page.audit.check()
    confirm(page, "old-bucket", "Disconnect “old-bucket”? Jobs can no longer read photos from it", "Yes, disconnect")
    page.audit.check("storages after a disconnect")
    assert count(stack, "Storage", "name='old-bucket'") == 0
    assert count(stack, "Storage", "name='catalogue'") == 1

    page.goto(f"{stack.base}/team/")
    page.audit.check()
    page.locator("summary", has_text="Leave").click()  # opened and left alone: Owen stays
    assert (
        "Leave Acme Studio? You no longer see its videos" in page.locator("details[open] .confirm-panel").inner_text()
    )
    shot(page, "phone-confirm-leave", full_page=True)
    page.audit.check("team with the Leave step open")
    confirm(page, "Rita Ray", "Remove Rita Ray from Acme Studio?", "Yes, remove")
    page.audit.check("team after a removal")
    assert count(stack, "Membership", "user__email='rita@example.com'") == 0
    assert count(stack, "Membership", "user__email='owen@example.com'") == 1  # Owen did not leave
    page.get_by_label("Email").fill("nina@example.com")  # a pending invite is revoked the same way
    page.get_by_role("button", name="Create invite link").click()
    page.wait_for_url(re.compile(r".*/team/"))
    confirm(page, "nina@example.com", "Revoke the invite for nina@example.com? Its link stops working", "Yes, revoke")
    page.audit.check("team after revoking an invite")
    assert count(stack, "Invite", "email='nina@example.com', revoked_at__isnull=False") == 1

    before = count(stack, "Generation", "deleted_at__isnull=True")
    page.goto(f"{stack.base}/gallery/")
    page.audit.check()
    tile = page.locator("article.tile").first
    number = tile.get_attribute("id")
    confirm(page, "Delete", "? Its file and links are gone for good", "Yes, delete the video")
    page.audit.check("gallery after a delete")
    assert page.locator(f"#{number}").count() == 0
    assert count(stack, "Generation", "deleted_at__isnull=True") == before - 1


# --- items 7 and 8: retry that says its price or opens the form; videos known by their photo ----------------


def test_item7_and_item8_retry_wording_photo_names_downloads_gallery_link_use_this_photo_and_dates(stack, page):
    job = stack.shell(
        "from django.core.files.base import ContentFile; from django.core.files.storage import default_storage; "
        "from generator.models import Generation; "
        "g = Generation.objects.filter(status='DONE', deleted_at__isnull=True, duration=5, request__output__isnull=True)"
        ".order_by('-created_at').first(); "
        "g.input_object = {'width': 1200, 'height': 800}; g.save(update_fields=['input_object']); "
        "default_storage.delete(g.video_name); default_storage.save(g.video_name, ContentFile(b'not really a video')); "
        "print(g.uuid, g.request['input'].rsplit('/', 1)[1])"
    )
    uuid, photo = job.split()
    log_in(page, stack.base, MEMBER)
    page.goto(f"{stack.base}/jobs/#job-{uuid}")
    page.audit.check()
    row = page.locator(f"#job-{uuid}")
    assert f"Photo: {photo}" in row.inner_text()
    assert row.get_by_role("button", name="Make again (35 credits)").is_visible()
    failed = page.locator(".job[data-status=ERROR]").first
    assert failed.get_by_role("button", name=re.compile("Make again")).count() == 0
    failed_prompt = failed.locator(".job-title").inner_text()
    failed.get_by_role("link", name="Edit and retry").click()
    page.wait_for_url(re.compile(r".*/\?from="))
    page.audit.check("generate, editing a failed job")
    assert "which failed:" in page.locator("#editing").inner_text()
    assert page.locator("#id_prompt").input_value() == failed_prompt  # the form holds the job, ready to fix

    page.goto(f"{stack.base}/jobs/#job-{uuid}")
    page.audit.check()
    page.locator(f"#job-{uuid}").get_by_role("link", name="see it in the gallery").click()
    page.wait_for_url(re.compile(rf".*/gallery/\?video={uuid}#video-{uuid}$"))
    page.audit.check("the gallery opened on one video")
    assert page.locator("article.tile").count() == 1
    tile = page.locator(f"#video-{uuid}")
    assert f"Photo: {photo}" in tile.inner_text()
    assert tile.locator("video[controls]").count() == 1  # opened, not one more click away
    stem = photo.rsplit(".", 1)[0]
    with page.expect_download() as download:
        tile.get_by_role("link", name=re.compile("^Download")).click()
    assert download.value.suggested_filename == f"{stem}-landscape-5s.mp4"
    href = tile.get_by_role("link", name=re.compile("^Download")).get_attribute("href")
    answer = page.request.get(href)
    assert answer.headers["content-disposition"] == f'inline; filename="{stem}-landscape-5s.mp4"'
    shot(page, "gallery-one-video")

    # A From date after the To date says so (through htmx), and its link swaps them.
    page.goto(f"{stack.base}/gallery/?from=2026-05-12&to=2026-05-03")
    page.audit.check("gallery with crossed dates")
    problem = page.locator("#dates-problem")
    assert "The From date (12 May 2026) is after the To date (3 May 2026)" in problem.inner_text()
    assert page.get_by_label("From", exact=True).input_value() == "2026-05-12"
    problem.get_by_role("link", name="Swap the dates").click()
    page.wait_for_url(re.compile(r".*from=2026-05-03&to=2026-05-12"))
    page.audit.check("gallery with the dates swapped")
    assert page.locator("#dates-problem").count() == 0

    # Storage Browse: "Use this photo" opens Generate with the photo picked.
    page.goto(f"{stack.base}/storages/1/browse")
    page.audit.check()
    page.get_by_role("link", name="Use this photo: coffee.png").click()
    page.wait_for_url(re.compile(r".*/\?input=storage"))
    page.audit.check("generate with a photo from Browse")
    assert page.locator("input[name=source][value=storage]").is_checked()
    assert page.locator("#id_storage_input").input_value() == "storage://catalogue/coffee.png"
    assert page.locator("#id_storage_input").is_visible()


# --- item 9: copy --------------------------------------------------------------------------------------------


def test_item9_logged_out_message_and_an_api_docs_page_with_code_marks_and_a_way_back(stack, page):
    log_in(page, stack.base, MEMBER)
    page.goto(f"{stack.base}/api/docs")
    page.audit.check()
    intro = page.locator("main p").first
    assert "`" not in page.locator("main").inner_text()  # code marks are drawn, not shown as backticks
    assert intro.locator("code", has_text="Authorization: Bearer <key>").count() == 1
    assert page.locator("main").inner_text().count("Authenticate with") == 1
    assert "Motionshop" in page.title()
    page.get_by_role("link", name="Back to the dashboard").click()
    page.wait_for_url(f"{stack.base}/")
    page.audit.check()
    assert "Motionshop" in page.title()
    page.get_by_label("Account menu").click()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r".*/accounts/login/$"))
    page.audit.check("login after logging out")
    assert "You are logged out." in page.locator(".messages").inner_text()
    page.reload()
    page.audit.check("login reloaded")
    assert page.get_by_text("You are logged out.").count() == 0
