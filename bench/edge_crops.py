"""2x crops of the studio cup's saucer edge in an orbit frame and a light-sweep frame (docs/formats.md).

Run with `.venv/bin/python bench/edge_crops.py NAME` (NAME: `before` or `after`): renders the
contact sheets' orbit and light-sweep clips of tests/fixtures/product.png at the shipped encoder
setting, decodes one frame of each and writes docs/contact-sheets/edge-NAME.png: the saucer's
lower-left edge late in the orbit (where the product has moved over its background) and its
lower-right edge as the sweep's streak crosses it, each enlarged 2x with nearest-neighbour pixels.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.engine import RenderOptions, decode_image, render_video  # noqa: E402

OUT = ROOT / "docs" / "contact-sheets"
PHOTO = ROOT / "tests" / "fixtures" / "product.png"
# (caption, prompt, frame, crop x0, y0, x1, y1 in the 1280x960 video)
CROPS = [
    ("orbit, 4.7 s: saucer, lower left", "orbit", 140, 250, 610, 470, 775),
    ("light sweep, 2.5 s: saucer, lower right", "light sweep", 75, 800, 630, 1020, 795),
]
SCALE = 2


def _frame(path: str, index: int) -> np.ndarray:
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return f.to_ndarray(format="rgb24")
    raise ValueError(f"{path} has no frame {index}")


def main(name: str) -> Path:
    decoded = decode_image(PHOTO.read_bytes())
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        for caption, prompt, index, x0, y0, x1, y1 in CROPS:
            video = str(Path(tmp) / "v.mp4")
            render_video(
                decoded.pixels,
                RenderOptions(prompt=prompt, guidance_scale=0.85),
                video_path=video,
                poster_path=str(Path(tmp) / "v.jpg"),
            )
            crop = _frame(video, index)[y0:y1, x0:x1]
            big = cv2.resize(crop, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
            panels.append((f"{name}: {caption}", big))
    gap, title_h = 8, 26
    h = max(p.shape[0] for _, p in panels)
    w = sum(p.shape[1] for _, p in panels) + gap * (len(panels) + 1)
    sheet = np.full((title_h + h + gap, w, 3), 255, np.uint8)
    x = gap
    for caption, p in panels:
        sheet[title_h : title_h + p.shape[0], x : x + p.shape[1]] = p
        cv2.putText(sheet, caption, (x, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
        x += p.shape[1] + gap
    path = OUT / f"edge-{name}.png"
    Image.fromarray(sheet).save(path, optimize=True)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("before", "after"):
        sys.exit("usage: bench/edge_crops.py before|after")
    print(main(sys.argv[1]).relative_to(ROOT))
