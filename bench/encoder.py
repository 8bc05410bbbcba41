"""x264 options vs the motion jitter of a pure zoom at the shipped preset and CRF (README, "Encoder").

Run with `make bench` (or `.venv/bin/python bench/encoder.py`). The engine renders a 5 s linear
zoom 1.00 -> 1.20 of the committed bench input at 1920x1280 once; those exact frames are encoded
with each option set, side by side in this process. For each: jitter (bench/engine.py's measure,
partially normalised phase correlation / cross-correlation, px), file size, SSIM of the decoded
frames against the uncompressed ones (luma, mean over every 10th frame), encode time and the
encoder's CPU time (user + system: steadier than wall time while other work shares the machine).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import INPUT, capture_frames, jitter, pure_zoom_plan  # noqa: E402

import generator.engine.encode as encode  # noqa: E402
from generator.engine import decode_image, output_size  # noqa: E402

# Each adds to what open_h264 ships (aq-mode=2 included), at the shipped CRF; the README names
# them in its table (tune=film is deblock=-1,-1:psy-rd=1,0.15).
OPTIONS = [
    "aq-mode=1",
    "aq-strength=0.6",
    "psy-rd=0.5,0",
    "deblock=1,1",
    "deblock=-1,-1:psy-rd=1,0.15",
    "mbtree=0",
    "fast-pskip=0",
    "subme=3",
    "subme=4",
    "me=umh",
    "trellis=1",
    "qcomp=0.7",
    "ref=2",
    "aq-mode=3",
]
# Options whose extra bits are traded back for size parity with a higher CRF.
AT_CRF = {"subme=4": 20.7, "deadzone-inter=8": 22.0}
VARIANTS: list[tuple[str, str, float | None]] = [
    ("shipped", "", None),
    *((o, ":" + o, None) for o in OPTIONS),
    *((f"{o}, CRF {c:g}", ":" + o, c) for o, c in AT_CRF.items()),
]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = cv2.GaussianBlur(a, (11, 11), 1.5), cv2.GaussianBlur(b, (11, 11), 1.5)
    va = cv2.GaussianBlur(a * a, (11, 11), 1.5) - mu_a**2
    vb = cv2.GaussianBlur(b * b, (11, 11), 1.5) - mu_b**2
    cov = cv2.GaussianBlur(a * b, (11, 11), 1.5) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return float(m.mean())


def main() -> None:
    decoded = decode_image(INPUT.read_bytes())
    size = output_size(decoded.width, decoded.height)
    original = encode.open_h264
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        frames = capture_frames(decoded.pixels, pure_zoom_plan(5), size, str(t / "frames.raw"))
        luma = size[0] * size[1]
        for name, extra, crf in VARIANTS:

            def opened(path, w, h, *, preset=encode.PRESET, crf=encode.CRF, extra=extra, own=crf, **kw):
                container, stream = original(path, w, h, preset=preset, crf=crf if own is None else own, **kw)
                options = dict(stream.options)
                options["x264-params"] += extra
                stream.options = options
                return container, stream

            encode.open_h264 = opened
            out = str(t / "v.mp4")
            t0, cpu0 = time.perf_counter(), sum(os.times()[:2])
            encode.encode_frames(out, size[0], size[1], len(frames), lambda: iter(frames), threaded=False)
            seconds, cpu = time.perf_counter() - t0, sum(os.times()[:2]) - cpu0
            encode.open_h264 = original
            scores = []
            with av.open(out) as c:
                for i, f in enumerate(c.decode(video=0)):
                    if i % 10 == 0:
                        y = f.to_ndarray(format="yuv420p")[: size[1]]
                        scores.append(ssim(y, np.asarray(frames[i][:luma]).reshape(size[1], size[0])))
            j = jitter(out)
            rows.append((name, j, Path(out).stat().st_size, float(np.mean(scores)), seconds, cpu))
    base = rows[0]
    print(f"pure zoom 1.00 -> 1.20, 5 s, {size[0]}x{size[1]}, {encode.PRESET} CRF {encode.CRF}")
    print(f"{'x264 option':44} {'jitter px':>15} {'size KB':>9} {'SSIM':>7} {'encode s':>9} {'CPU s':>7} {'CPU':>6}")
    for name, j, nbytes, s, secs, cpu in rows:
        print(
            f"{name:44} {j[0]:6.3f} / {j[1]:.3f} {nbytes / 1024:9.0f} {s:7.4f} {secs:9.2f} {cpu:7.2f} {cpu / base[5]:5.2f}x"
        )


if __name__ == "__main__":
    main()
