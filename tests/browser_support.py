"""What every browser test module shares: a real web server + worker stack, Chromium, and an audit
that runs axe-core at both widths on every page a test visits (see docs/dashboard.md).

A module that uses the `stack` fixture gets its own server process and worker (module scope); the
data it needs is seeded through `manage.py shell`, never through the pytest-django database.
Registered as a plugin in tests/conftest.py.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.harness import Instance, wait_for  # noqa: F401 - the browser modules import wait_for from here
from tests.loopback import LoopbackServer, Route

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct-horse-battery-staple"
MEMBER, OWNER, STAFF = "mia@example.com", "owen@example.com", "admin@example.com"
WIDE, PHONE = {"width": 1360, "height": 900}, {"width": 390, "height": 844}
# Every host name fails to resolve in the browser; the stack and the photo server are reached by IP.
HOST_RESOLVER_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
SCRIPTS = re.compile(r".*\.js(\?.*)?$")

# axe-core findings kept on purpose, by rule id, with the reason (also listed in docs/dashboard.md).
# Anything else axe reports, of any impact, fails the test that visited the page.
AXE_KEPT: dict[str, str] = {}
AXE_FAILING_IMPACTS = {"critical", "serious"}

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
for i in range({count}):
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


def jpeg_of(name: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(FIXTURES / f"{name}.png").convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class Stack(Instance):
    """An instance of the service (web server and worker over one SQLite file, tests/harness.py)
    seeded with the Acme Studio team, plus a loopback server for input photos."""

    def __init__(self, tmp: Path, *, seed_count: int = 30, env: dict[str, str] | None = None) -> None:
        self.photos = LoopbackServer()
        self.photos.routes["/products/cup.jpg"] = Route(body=jpeg_of("coffee"), headers={"Content-Type": "image/jpeg"})
        (tmp / "storages").mkdir()
        (tmp / "media").mkdir()
        # `env` wins over these defaults (a module whose stack must reach a stand-in of its own).
        defaults = {"GENERATOR_FETCH_ALLOW_HOSTS": f"127.0.0.1:{self.photos.port}", "GENERATOR_WORKERS": "1"}
        super().__init__(tmp, **{**defaults, **(env or {})})
        self.shell(SEED.format(password=PASSWORD, fixtures=FIXTURES, count=seed_count))
        self.start()

    def stop(self) -> None:
        super().stop()
        self.photos.close()


# --- the audit: axe-core at both widths, JavaScript errors, server errors ---------------------------

AXE_TOTALS: Counter = Counter()  # (width, impact) -> violations seen; "checks" -> pages audited per width


def _axe_script() -> str:
    from axe_playwright_python.base import AXE_SCRIPT

    return AXE_SCRIPT


def _describe(violation: dict) -> str:
    nodes = "; ".join(
        f"{' '.join(map(str, node.get('target', [])))} -> {node.get('html', '')[:160]}"
        for node in violation["nodes"][:4]
    )
    return f"{violation['id']} ({violation['impact']}): {violation['help']} [{len(violation['nodes'])} nodes: {nodes}]"


def axe_violations(page) -> list[dict]:
    """Run axe-core (WCAG 2.x A/AA and best practices) on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_script())
    return page.evaluate("() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)")


class Audit:
    """Follow one page: axe at both widths on every page it shows, and no JS or server errors."""

    def __init__(self, page) -> None:
        self.page = page
        self.problems: list[str] = []
        self.visited: list[str] = []
        self.audited: set[str] = set()
        page.on("pageerror", lambda exc: self.problems.append(f"JavaScript error on {page.url}: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console error on {page.url}: {msg.text}")
                if msg.type == "error" and not _expected_console_error(msg.text)
                else None
            ),
        )
        page.on(
            "response",
            lambda response: (
                self.problems.append(f"{response.status} from {response.url}") if response.status >= 500 else None
            ),
        )
        page.on("framenavigated", self._navigated)

    def _navigated(self, frame) -> None:
        if frame == self.page.main_frame:
            self.visited.append(_page_key(frame.url))

    def check(self, label: str = "") -> None:
        """Run axe on the current page at 1360 px and 390 px (restoring the width it had)."""
        page = self.page
        page.wait_for_load_state("load")
        before = page.viewport_size or WIDE
        widths = [before, PHONE if before["width"] > PHONE["width"] else WIDE]
        failures = []
        for size in widths:
            if page.viewport_size != size:
                page.set_viewport_size(size)
            AXE_TOTALS[("checks", size["width"])] += 1
            for violation in axe_violations(page):
                AXE_TOTALS[(size["width"], violation["impact"])] += 1
                if violation["id"] in AXE_KEPT and violation["impact"] not in AXE_FAILING_IMPACTS:
                    AXE_TOTALS[(size["width"], "kept:" + violation["id"])] += 1
                    continue
                failures.append(f"at {size['width']} px: {_describe(violation)}")
        if page.viewport_size != before:
            page.set_viewport_size(before)
        self.audited.add(_page_key(page.url))
        assert not failures, f"axe on {label or page.url}:\n" + "\n".join(failures)

    def finish(self) -> None:
        if self.page.is_closed():
            return
        if _page_key(self.page.url) not in self.audited and self.page.url.startswith("http"):
            self.check("the last page")
        missed = [url for url in dict.fromkeys(self.visited) if url not in self.audited and url.startswith("http")]
        assert not missed, f"pages shown but not audited with axe: {missed}"
        assert not self.problems, "\n".join(self.problems)


def _page_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def _expected_console_error(text: str) -> bool:
    # Chromium logs a refused resource (a 4xx that a test provokes on purpose) as a console error, and
    # an image of an off-machine URL, which HOST_RESOLVER_RULES keeps from resolving, as a name not resolved.
    return bool(
        re.search(r"Failed to load resource: the server responded with a status of 4\d\d", text)
        or re.search(r"Failed to load resource: net::ERR_NAME_NOT_RESOLVED", text)
    )


def pytest_terminal_summary(terminalreporter) -> None:
    if not AXE_TOTALS:
        return
    widths = sorted({w for (kind, w) in AXE_TOTALS if kind == "checks"}, reverse=True)
    terminalreporter.section("axe-core")
    for width in widths:
        impacts = {impact: AXE_TOTALS[(width, impact)] for impact in ("critical", "serious", "moderate", "minor")}
        kept = {key[1][5:]: n for key, n in AXE_TOTALS.items() if key[0] == width and str(key[1]).startswith("kept:")}
        terminalreporter.write_line(
            f"{width} px: {AXE_TOTALS[('checks', width)]} page checks; violations "
            + ", ".join(f"{k} {v}" for k, v in impacts.items())
            + (f"; kept on purpose: {kept}" if kept else "")
        )


# --- fixtures ---------------------------------------------------------------------------------------


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
            # The browser resolves no name at all: a page that shows an image of a typed URL (the shape
            # picker's preview) fails to load it instead of asking any DNS server (the network rule).
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                f"--host-resolver-rules={HOST_RESOLVER_RULES}",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """Open audited pages: open_page(viewport=..., javascript=...) -> a page with page.audit."""
    contexts = []

    def opener(*, viewport: dict | None = None, javascript: bool = True):
        context = browser.new_context(viewport=viewport or WIDE, device_scale_factor=1)
        context.set_default_timeout(15_000)
        if not javascript:
            # A browser without JavaScript, as far as our pages can tell: every script they load is empty.
            # (Chromium's own switch would also stop axe-core, which runs on timers, from auditing the page.)
            context.route(SCRIPTS, lambda route: route.fulfill(body="", content_type="text/javascript"))
        page = context.new_page()
        page.audit = Audit(page)
        contexts.append((context, page))
        return page

    yield opener
    try:
        for _context, page in contexts:
            page.audit.finish()
    finally:
        for context, _page in contexts:
            context.close()


@pytest.fixture
def page(open_page):
    return open_page()


def shot(page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.audit.check("login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/$"))
    page.audit.check()
