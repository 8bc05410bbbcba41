"""Render each move and effect on fixture photos and save 6-frame contact sheets under docs/contact-sheets/."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.engine import Format, RenderOptions, decode_image, render_video  # noqa: E402
from generator.engine.plan import Pan, Plan  # noqa: E402

OUT = ROOT / "docs" / "contact-sheets"
FIX = ROOT / "tests" / "fixtures"
THUMB_W = 288
# (sheet name, fixture, options): one word or effect per sheet, guidance high so only it shows.
SHEETS = [
    ("zoom-in", "astronaut", {"prompt": "zoom in"}),
    ("zoom-out", "coffee", {"prompt": "zoom out"}),
    ("pan-left", "coffee", {"prompt": "pan left"}),
    ("pan-right", "chelsea", {"prompt": "pan right"}),
    ("pan-up", "astronaut", {"prompt": "pan up"}),
    ("pan-down", "astronaut", {"prompt": "pan down"}),
    ("tilt", "product", {"prompt": "tilt"}),
    ("orbit-parallax", "product", {"prompt": "orbit"}),
    ("orbit-fallback-busy-photo", "chelsea", {"prompt": "orbit"}),
    ("light-sweep", "product", {"prompt": "light sweep"}),
    ("float", "product", {"prompt": "gentle float"}),
    ("sparkles", "product", {"prompt": "glitter particles"}),
    ("vignette", "coffee", {"prompt": "vignette"}),
    ("fade", "chelsea", {"prompt": "fade in and out"}),
    ("auto-product", "product", {"auto": True}),
    ("auto-product-10s", "product", {"auto": True, "duration": 10}),
    ("auto-photo", "coffee", {"auto": True}),
    ("prompt-zoom-out-glitter", "product", {"prompt": "camera zoom out, glitter particles"}),
]
# Every shape on a studio product (plain backdrop: extended) and a busy photo (blurred), auto mode.
SHAPES = ["9:16", "16:9", "1:1", "4:5"]
SHEETS += [
    (f"shape-{shape.replace(':', 'x')}-{fixture}", fixture, {"auto": True, "format": {"aspect_ratio": shape}})
    for fixture in ("product", "chelsea")
    for shape in SHAPES
]


def _frames(path: str, picks: list[int]) -> list[np.ndarray]:
    out = []
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in picks:
                out.append(f.to_ndarray(format="rgb24"))
    return out


def sheet(name: str, fixture: str, opts: dict, workdir: Path) -> tuple[Path, Plan]:
    """Render one video and lay six evenly spaced frames out as a 3 x 2 PNG with captions."""
    fmt = Format(**opts.pop("format")) if "format" in opts else None
    shape = fmt or Format()
    decoded = decode_image(
        (FIX / f"{fixture}.png").read_bytes(), aspect_ratio=shape.aspect_ratio, resolution=shape.resolution
    )
    options = RenderOptions(guidance_scale=opts.pop("guidance_scale", 0.85), format=fmt, **opts)
    video = workdir / f"{name}.mp4"
    result = render_video(decoded.pixels, options, video_path=str(video), poster_path=str(workdir / f"{name}.jpg"))
    total = result.frames
    picks = [round(x) for x in np.linspace(6, total - 7, 6)]
    frames = _frames(str(video), picks)
    thumbs = []
    for i, fr in zip(picks, frames, strict=True):
        h, w = fr.shape[:2]
        th = cv2.resize(fr, (THUMB_W, round(h * THUMB_W / w)), interpolation=cv2.INTER_AREA)
        # The time, in white on a black outline, readable on any frame.
        for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            label = f"{i / result.fps:4.1f}s"
            cv2.putText(th, label, (8, th.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, thickness, cv2.LINE_AA)
        thumbs.append(th)
    gap = 6
    th_h = thumbs[0].shape[0]
    title_h = 30
    canvas = np.full((title_h + 2 * th_h + 3 * gap, 3 * THUMB_W + 4 * gap, 3), 255, np.uint8)
    for k, th in enumerate(thumbs):
        r, c = divmod(k, 3)
        y = title_h + gap + r * (th_h + gap)
        x = gap + c * (THUMB_W + gap)
        canvas[y : y + th_h, x : x + THUMB_W] = th
    label = opts.get("prompt") or ("auto: " + (result.generated_prompt or ""))
    if fmt is not None and result.plan.format is not None:
        label = f"{fmt.aspect_ratio} {result.width}x{result.height}, fill {result.plan.format['fill']} | {label}"
    title = f"{name}  |  {label}  |  {result.duration_s:.0f}s"
    cv2.putText(canvas, title[:110], (gap, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    path = OUT / f"{name}.png"
    # Full colour: a palette would posterise gradients and misrepresent what the video looks like.
    Image.fromarray(canvas).save(path, optimize=True)
    return path, result.plan


def main(argv: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    only = set(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for name, fixture, opts in SHEETS:
            if only and name not in only:
                continue
            t0 = time.perf_counter()
            path, plan = sheet(name, fixture, dict(opts), Path(tmp))
            moves = (
                ", ".join(m.type + (f" {m.direction}" if isinstance(m, Pan) else "") for m in plan.moves) or "static"
            )
            effects = ", ".join(e.type for e in plan.effects) or "none"
            sep = plan.separation
            note = f" separation={'confident' if sep.confident else sep.reason}" if sep else ""
            print(
                f"{path.relative_to(ROOT)}  {time.perf_counter() - t0:5.1f}s  moves: {moves}; effects: {effects}{note}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
