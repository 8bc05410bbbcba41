"""The product in a real browser: Debian's Chromium driven by Playwright against a real web server
process and a real qcluster worker sharing one file SQLite database.

The server and the worker run as subprocesses (like `make run`), so these tests never touch the
pytest-django test database; the data they need is seeded through `manage.py shell`.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.loopback import LoopbackServer, Route

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct-horse-battery-staple"
MEMBER, OWNER, STAFF = "mia@example.com", "owen@example.com", "admin@example.com"

SEED = r"""
import shutil
from datetime import timedelta
from pathlib import Path
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image
import io
from generator.models import CreditLedger, Generation, Membership, Storage, Team, User
from generator.services.billing import credits_grant, credits_hold

team = Team.objects.create(name="Acme Studio", slug="acme-studio")
credits_grant(team=team, amount=3000, reason="Starter budget")
mia = User.objects.create_user(email="mia@example.com", password="{password}", name="Mia Chen")
owen = User.objects.create_user(email="owen@example.com", password="{password}", name="Owen Park")
User.objects.create_superuser(email="admin@example.com", password="{password}", name="Ada Admin")
Membership.objects.create(team=team, user=owen, role="owner")
Membership.objects.create(team=team, user=mia, role="member", monthly_cap=2000)
side = Team.objects.create(name="Side Project", slug="side-project")
Membership.objects.create(team=side, user=mia, role="owner")

photos = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / team.slug / "catalogue"
(photos / "mugs").mkdir(parents=True, exist_ok=True)
fixtures = Path("{fixtures}")
for name in ("coffee", "astronaut", "chelsea"):
    shutil.copy(fixtures / f"{{name}}.png", photos / f"{{name}}.png")
shutil.copy(fixtures / "coffee.png", photos / "mugs" / "coffee-mug.png")
Storage.objects.create(team=team, name="catalogue", type="local", parameters={{"path": "catalogue"}}, created_by=owen)

def poster(source, i):
    image = Image.open(fixtures / f"{{source}}.png").convert("RGB")
    # Vary the seeded posters the way the engine's moves frame them: a zoomed crop, never a torn edge.
    w, h = image.size
    zoom = 1.0 + (i % 4) * 0.06
    cw, ch = int(w / zoom), int(h / zoom)
    left, top = (w - cw) * (i % 3) // 2, (h - ch) * ((i // 3) % 3) // 2
    image = image.crop((left, top, left + cw, top + ch)).resize((w, h), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=82)
    return default_storage.save(f"posters/seed-{{i}}.jpg", ContentFile(buffer.getvalue()))

prompts = ["slow zoom in, light sweep", "orbit with sparkle particles", "pan left, gentle float",
           "zoom out, vignette", "tilt up, fade in", "parallax orbit, glitter"]
now = timezone.now()
for i in range(30):
    user = mia if i % 3 else owen
    status = "ERROR" if i % 11 == 5 else "DONE"
    created = now - timedelta(hours=2 + i * 9)
    # Links count from completion: all but the oldest were finished recently enough to play.
    completed = now - timedelta(minutes=20 + i * 25)
    if i == 29:
        completed = created + timedelta(seconds=25)  # its temporary link has expired
    g = Generation.objects.create(
        team=team, created_by=user, status=status, stage=status.lower(), progress=100 if status == "DONE" else 40,
        request={{"input": f"storage://catalogue/{{['coffee', 'astronaut', 'chelsea'][i % 3]}}.png",
                 "options": {{"prompt": f"{{prompts[i % len(prompts)]}} (seed {{i:02d}})", "duration": 10 if i % 4 == 0 else 5, "guidance_scale": 0.5}}}},
        duration=10 if i % 4 == 0 else 5, cost=70 if i % 4 == 0 else 35, created_at=created, completed_at=completed,
        poster_name=poster(["coffee", "astronaut", "chelsea"][i % 3], i) if status == "DONE" else "",
        video_name=f"videos/{{team.slug}}/missing-{{i}}.mp4" if status == "DONE" else "",
        errors=[{{"error": "the image is 280 px wide; each side must be at least 300 px", "created_at": completed.isoformat()}}] if status == "ERROR" else [],
    )
    team.refresh_from_db()
    hold = credits_hold(team=team, generation=g, user=user)
    CreditLedger.objects.filter(pk=hold.pk).update(created_at=created)
    if status == "ERROR":
        from generator.services.billing import credits_refund
        refund = credits_refund(generation=g, reason="failed: image too small")
        CreditLedger.objects.filter(pk=refund.pk).update(created_at=completed)
print("seeded")
"""


BALANCE = "from generator.models import Team; print(Team.objects.get(slug='acme-studio').balance)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def jpeg_of(name: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(FIXTURES / f"{name}.png").convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class Stack:
    """A web server and a worker over one SQLite file, plus a loopback server for input photos."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.photos = LoopbackServer()
        self.photos.routes["/products/cup.jpg"] = Route(body=jpeg_of("coffee"), headers={"Content-Type": "image/jpeg"})
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH"}}
        env.update(
            {
                "DEBUG": "1",
                "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
                "GENERATOR_DATA_DIR": str(tmp),
                "GENERATOR_LOCAL_STORAGE_ROOT": str(tmp / "storages"),
                "MEDIA_ROOT": str(tmp / "media"),
                "GENERATOR_PUBLIC_URL": self.base,
                "GENERATOR_FETCH_ALLOW_HOSTS": f"127.0.0.1:{self.photos.port}",
                "GENERATOR_WORKERS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env = env
        (tmp / "storages").mkdir()
        (tmp / "media").mkdir()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=180,
        )
        self.shell(SEED.format(password=PASSWORD, fixtures=FIXTURES))
        self.logs = open(tmp / "processes.log", "w")  # noqa: SIM115 - closed in stop()
        self.web = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                f"127.0.0.1:{self.port}",
                "--noreload",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.logs,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.worker = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=self.logs,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert wait_for(lambda: port_open(self.port), 60), self.log_tail()

    def shell(self, code: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.strip().splitlines()[-1]

    def log_tail(self) -> str:
        self.logs.flush()
        return (self.tmp / "processes.log").read_text()[-4000:]

    def stop(self) -> None:
        for process in (self.worker, self.web):
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.photos.close()
        self.logs.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is required at {CHROMIUM} (apt-get install chromium)")
    running = Stack(tmp_path_factory.mktemp("browser"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/$"))


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

    page.get_by_role("link", name="Gallery").first.click()
    page.wait_for_url(re.compile(r".*/gallery/.*"))
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


def test_member_browses_the_gallery_with_filters_pagination_and_expired_items(stack, page):
    base = stack.base
    log_in(page, base, MEMBER)
    page.goto(f"{base}/gallery/")
    tiles = page.locator("article.tile")
    assert tiles.count() == 24
    assert "Page 1 of 2" in page.locator(".pagination").inner_text()
    assert page.get_by_text("Owen Park").count() > 0  # another member's videos are listed

    expired = page.locator("article.tile.expired")
    assert expired.count() == 0  # the expired seed item is the oldest: on the last page
    page.get_by_role("link", name="Older →").click()
    page.wait_for_url(re.compile(r".*page=2.*"))
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
    statuses = page.locator("article.tile").evaluate_all("els => els.map(e => e.dataset.status)")
    assert statuses
    assert set(statuses) == {"ERROR"}

    page.get_by_label("Status").select_option("")
    page.wait_for_function("() => document.querySelectorAll('article.tile').length === 24")
    page.get_by_label("Member").select_option(label="Owen Park")
    page.wait_for_function("() => document.querySelectorAll('article.tile').length < 24")
    owners = page.locator("article.tile .tile-who").all_inner_texts()
    assert owners
    assert set(owners) == {"Owen Park"}


def test_pages_fit_a_phone_screen_without_sideways_scrolling(stack, page):
    base = stack.base
    log_in(page, base, MEMBER)
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in [
        ("generate", "/"),
        ("jobs", "/jobs/"),
        ("gallery", "/gallery/"),
        ("credits", "/credits/"),
    ]:
        page.goto(f"{base}{path}")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))"
        )
        assert overflow <= 0, f"{path} is {overflow} px wider than the phone screen: {wide}"
        if name == "gallery":
            shot(page, "gallery-phone")


def test_admin_grants_500_credits_and_the_member_sees_balance_and_reason(stack, browser):
    base = stack.base
    before = int(stack.shell(BALANCE))
    admin_context = browser.new_context(viewport={"width": 1360, "height": 900})
    admin = admin_context.new_page()
    admin.goto(f"{base}/admin/")
    admin.get_by_label("Email").fill(STAFF)
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.goto(f"{base}/admin/generator/team/")
    admin.locator("tr", has_text="Acme Studio").locator("input[name=_selected_action]").check()
    admin.locator("select[name=action]").select_option("grant_credits")
    admin.get_by_role("button", name="Go").click()
    admin.get_by_label("Amount").fill("500")
    admin.get_by_label("Reason").fill("Spring campaign top-up")
    shot(admin, "admin-grant")
    admin.get_by_role("button", name="Apply").click()
    assert "+500 credits" in admin.locator(".messagelist").inner_text()
    admin_context.close()

    member_context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = member_context.new_page()
    log_in(page, base, MEMBER)
    page.get_by_role("link", name="Credits", exact=True).click()
    balance = int(page.locator("#credits-balance").inner_text())
    assert balance == before + 500
    line = page.locator("#ledger tbody tr").first
    assert "Spring campaign top-up" in line.inner_text()
    assert "+500" in line.inner_text()
    assert "Ada Admin" in line.inner_text()
    shot(page, "credits", full_page=True)

    member_context.close()

    # The owner's view of the management pages, for the README.
    owner_context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = owner_context.new_page()
    log_in(page, base, OWNER)
    for name, path in [
        ("team", "/team/"),
        ("storage-browse", "/storages/1/browse"),
    ]:
        page.goto(f"{base}{path}")
        page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        shot(page, name)
    page.goto(f"{base}/storages/")
    page.evaluate("window.__noReload = 1")
    page.get_by_role("button", name="Test connection").click()  # an htmx POST: CSRF comes from <body>
    page.get_by_text("Connection works.").wait_for()
    assert page.evaluate("window.__noReload") == 1
    assert page.locator(".steps li.ok").count() >= 3
    shot(page, "storages")
    page.goto(f"{base}/keys/")
    page.get_by_label("Name").fill("Shop import script")
    page.get_by_role("button", name="Create key").click()
    assert page.locator("#raw-key").inner_text().startswith("iv_")
    shot(page, "keys")
    owner_context.close()


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
    assert page.locator("#id_storage_input").input_value() == "storage://catalogue/mugs/coffee-mug.png"
    page.get_by_label("Prompt", exact=True).fill("orbit, sparkle")
    shot(page, "generate-storage-picker")
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(re.compile(r".*/jobs/.*"))
    assert "orbit, sparkle" in page.locator(".job").first.inner_text()

    time.sleep(1.1)  # the team may start one video per second
    page.goto(f"{base}/")
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
