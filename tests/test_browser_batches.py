"""Batches in a real browser (issue 12): start one from a storage folder on the Generate page, watch its
progress bar advance without a reload, download the CSV; the Batches page and the job page show it.
Every page is audited with axe-core at both widths (tests/browser_support.py)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser_support import MEMBER, PHONE, log_in, shot

pytestmark = pytest.mark.slow


def test_a_folder_batch_starts_advances_live_and_its_csv_downloads(stack, page, open_page):
    log_in(page, stack.base, MEMBER)
    page.goto(f"{stack.base}/")
    page.get_by_role("link", name="Batch", exact=True).click()
    page.wait_for_url(re.compile(r".*\?mode=batch$"))
    page.audit.check("generate, batch mode")

    # Pick the folder in the storage browser: open the storage, choose "Use this folder".
    page.get_by_role("link", name="catalogue").click()
    page.get_by_role("button", name="Use this folder").click()
    assert page.get_by_role("textbox", name="Folder", exact=True).input_value() == "storage://catalogue/"
    page.audit.check("generate, folder picked")
    page.get_by_label("Prompt", exact=True).fill("slow zoom in, light sweep")
    page.get_by_role("button", name="Start batch").click()
    page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]{36}/$"))
    page.audit.check("batch page")
    assert "Started a batch of 3 videos" in page.locator(".messages").inner_text()

    # The same document all along: a marker set now survives only if the page never reloads.
    page.evaluate("window.__sameDocument = true")
    row = page.locator(".job.batch")
    bar = row.get_by_role("progressbar")
    seen = {int(bar.get_attribute("aria-valuenow"))}
    deadline_ms = 240_000
    page.wait_for_function(
        "() => { const bar = document.querySelector('.job.batch [role=progressbar]');"
        " window.__seen = window.__seen || new Set(); window.__seen.add(bar.getAttribute('aria-valuenow'));"
        " return bar.getAttribute('aria-valuenow') === '3'; }",
        polling=200,
        timeout=deadline_ms,
    )
    seen |= {int(value) for value in page.evaluate("() => [...window.__seen]")}
    assert page.evaluate("window.__sameDocument") is True
    assert seen >= {0, 3}
    assert len(seen) >= 3, f"the bar jumped instead of advancing: {sorted(seen)}"
    # The ticker marks the batch done on its next tick after the last item ends; the row catches up.
    expect(row).to_have_attribute("data-state", "done", timeout=10_000)
    assert "3 done" in row.inner_text()
    page.audit.check("batch done")
    shot(page, "batch")

    with page.expect_download() as download_info:
        row.get_by_role("link", name="CSV").click()
    download = download_info.value
    assert re.fullmatch(r"batch-\d+-results\.csv", download.suggested_filename)
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [(row["input"], row["status"], row["output_name"]) for row in rows] == [
        ("storage://catalogue/astronaut.png", "DONE", "astronaut.mp4"),
        ("storage://catalogue/chelsea.png", "DONE", "chelsea.mp4"),
        ("storage://catalogue/coffee.png", "DONE", "coffee.mp4"),
    ]
    assert all(row["link"].startswith(f"{stack.base}/v/") for row in rows)

    # Each item's job page names its batch; the gallery filters by it; the Batches page lists it.
    page.reload()  # the items table is drawn with the page; only the progress row lives
    page.locator("#items").get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    batch_link = page.get_by_role("link", name=re.compile(r"^Batch #\d+$"))
    assert "video 1 of 3" in page.locator("table").first.inner_text()
    page.audit.check("job page of a batch item")
    batch_link.click()
    page.get_by_role("link", name="In the gallery").click()
    page.wait_for_url(re.compile(r".*/gallery/\?batch=\d+$"))
    assert page.locator(".gallery .tile, .gallery article, .gallery > *").count() == 3
    page.audit.check("gallery filtered by batch")
    page.goto(f"{stack.base}/batches/")
    assert page.locator(".job.batch").count() == 1
    page.audit.check("batches page")

    phone = open_page(viewport=PHONE)
    log_in(phone, stack.base, MEMBER)
    phone.goto(f"{stack.base}/batches/")
    phone.audit.check("batches page on a phone")
    phone.goto(f"{stack.base}/?mode=batch")
    phone.audit.check("batch mode on a phone")
    overflow = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
