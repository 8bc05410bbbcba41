"""x264 options vs the motion jitter of a pure zoom at the shipped preset and CRF (README, "Encoder").

Run with `make bench` (or `.venv/bin/python bench/encoder.py`). The engine renders a 5 s linear
zoom 1.00 -> 1.20 of the committed bench input at 1920x1280 once; those exact frames are encoded
with each option set, side by side in this process. For each: jitter (bench/engine.py's measure,
partially normalised phase correlation / cross-correlation, px), file size, SSIM of the decoded
frames against the uncompressed ones (luma, mean over every 10th frame), encode time and the
encoder's CPU time (user + system: steadier than wall time while other work shares the machine).

`--instructions N` also counts the instructions libx264 executes to encode the first N frames
of the same clip with each option set (valgrind --tool=callgrind in a child process, x264
threads=1): unlike CPU time, repeatable to the instruction whatever else the machine runs, and
the figure the README's cost column gives. Slow (about a minute per option set for N=60), so
not part of `make bench`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
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

# The cheapest subme=3 set found that keeps its jitter, the base of the last rows.
S3_DIA = "subme=3:partitions=i8x8,i4x4:weightb=0:deblock=-1,-1:merange=8:me=dia"

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
    # B-frame options: the zoom's noise sits in how B-frames follow the motion.
    "weightb=0",
    "direct=temporal",
    "direct=auto",
    "b-pyramid=none",
    "bframes=2",
    "bframes=4",
    "nr=200",
    "aq-strength=1.3",
    # Time savers, alone and to pay for subme=4 (`faster` is veryfast + these four).
    "partitions=i8x8,i4x4",
    "me=dia",
    "weightp=0",
    "subme=4:partitions=i8x8,i4x4",
    "subme=4:partitions=i8x8,i4x4:weightb=0",
    "subme=4:partitions=none:me=dia:weightp=0:scenecut=0",
    "subme=4:ref=2:rc-lookahead=20:trellis=1",
    # Quantiser ratios and B-frame bias: mbtree sets B-frame quantisers, b-adapt=0 fixes the pattern.
    "pbratio=1.1",
    "b-bias=-50",
    "pbratio=1.1:weightb=0",
    # Residual and direct-mode options: what decides whether a B macroblock passes its skip probe.
    "dct-decimate=0",
    "dct-decimate=0:weightb=0",
    "8x8dct=0",
    "direct=temporal:weightb=0",
    "fast-pskip=0:weightb=0",
    # Loop-filter, lookahead, pyramid, search range and threading options, then the cheapest
    # subme=3 sets (README, the rows after fast-pskip=0:weightb=0).
    "deblock=-1,-1",
    "no-deblock=1",
    "deblock=-1,-1:weightb=0",
    "rc-lookahead=20",
    "rc-lookahead=40",
    "b-pyramid=strict",
    "merange=8",
    "sliced-threads=1",
    "subme=3:partitions=i8x8,i4x4:weightb=0",
    "subme=3:partitions=i8x8,i4x4:weightb=0:deblock=-1,-1:merange=8",
    "subme=4:partitions=i8x8,i4x4:weightb=0:deblock=-1,-1",
    # No B-frames, the remaining cheap options, and the subme=3 set above with every time saver
    # that keeps its jitter (me=dia, scenecut=0) or trades it (README, the last eighteen rows).
    "bframes=0",
    "chroma-me=0",
    "deblock=-1,-1:8x8dct=0",
    "deblock=-2,-2",
    "rc-lookahead=5",
    S3_DIA,
    S3_DIA + ":scenecut=0",
    S3_DIA + ":merange=4",
    S3_DIA + ":direct=temporal",
    S3_DIA + ":8x8dct=0",
    S3_DIA.replace("i8x8,i4x4", "none"),
    S3_DIA + ":rc-lookahead=5",
    # tune=stillimage and tune=grain as x264-params (their psy-rd needs subme 6: no effect here).
    "aq-strength=1.2:deblock=-3,-3",
    "aq-strength=0.5:psy-rd=1,0.25:deadzone-inter=6:deadzone-intra=6:qcomp=0.8:dct-decimate=0:ipratio=1.1:pbratio=1.1",
]
# Options whose extra bits are traded back for size parity with a higher CRF.
AT_CRF = {
    "subme=4": 20.7,
    "deadzone-inter=8": 22.0,
    "subme=4:partitions=i8x8,i4x4": 20.4,
    "qcomp=0.7": 21.0,
    "qcomp=0.7:weightb=0": 21.0,
    S3_DIA + ":scenecut=0": 20.4,
    "rc-lookahead=5": 19.0,
    S3_DIA + ":scenecut=0:rc-lookahead=5": 18.5,
    "aq-strength=1.2:deblock=-1,-1": 20.5,
}
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


# Encodes the first N frames of a raw yuv420p file as open_h264 would, one x264 thread; run under
# callgrind, whose per-object totals give libx264's own instruction count.
CHILD = r"""
import sys
from fractions import Fraction
import av, numpy as np
raw, w, h, n, preset, crf, params = sys.argv[1:]
w, h, n = int(w), int(h), int(n)
frames = np.memmap(raw, dtype=np.uint8, mode="r", shape=(n, w * h * 3 // 2))
c = av.open(raw + ".mp4", mode="w", format="mp4")
s = c.add_stream("libx264", rate=30)
s.width, s.height, s.pix_fmt = w, h, "yuv420p"
s.codec_context.thread_type = "FRAME"
s.codec_context.time_base = Fraction(1, 30)
s.options = {"preset": preset, "crf": crf, "profile": "high", "x264-params": params + ":threads=1"}
for i in range(n):
    f = av.VideoFrame.from_ndarray(np.asarray(frames[i]).reshape(h * 3 // 2, w), format="yuv420p")
    f.pts = i
    for p in s.encode(f):
        c.mux(p)
for p in s.encode(None):
    c.mux(p)
c.close()
"""


def x264_instructions(raw: Path, size: tuple[int, int], n: int, crf: float, params: str) -> int:
    """Instructions executed inside libx264 to encode `n` frames (callgrind, self cost per ELF object)."""
    out = raw.with_suffix(".callgrind")
    args = [str(raw), str(size[0]), str(size[1]), str(n), encode.PRESET, f"{crf:g}", params]
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", CHILD, *args]
    subprocess.run(cmd, check=True, capture_output=True)
    names: dict[str, str] = {}
    total, obj, after_call = 0, "", False
    with open(out, errors="replace") as f:
        for line in f:
            if m := re.match(r"c?ob=\((\d+)\)(?: (.*))?$", line.rstrip("\n")):
                names.setdefault(m[1], m[2] or "")
                if line.startswith("ob="):
                    obj = names[m[1]]
            elif line.startswith("calls="):
                after_call = True  # the next cost line is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                if not after_call and "libx264" in obj and len(parts := line.split()) > 1:
                    total += int(parts[1])
                after_call = False
    out.unlink()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--instructions", type=int, default=0, metavar="N", help="count libx264 instructions over N frames"
    )
    count = parser.parse_args().instructions
    if count and not shutil.which("valgrind"):
        sys.exit("--instructions needs valgrind")
    decoded = decode_image(INPUT.read_bytes())
    size = output_size(decoded.width, decoded.height)
    original = encode.open_h264
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        frames = capture_frames(decoded.pixels, pure_zoom_plan(5), size, str(t / "frames.raw"))
        luma = size[0] * size[1]
        if count:
            raw = t / "head.raw"
            np.asarray(frames[:count]).tofile(raw)
            probe, stream = original(str(t / "probe.mp4"), *size)
            shipped = dict(stream.options)["x264-params"]
            probe.close()
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
            ins = (
                x264_instructions(raw, size, count, encode.CRF if crf is None else crf, shipped + extra) if count else 0
            )
            rows.append((name, j, Path(out).stat().st_size, float(np.mean(scores)), seconds, cpu, ins))
    base = rows[0]
    print(f"pure zoom 1.00 -> 1.20, 5 s, {size[0]}x{size[1]}, {encode.PRESET} CRF {encode.CRF}")
    head = f"{'x264 option':56} {'jitter px':>15} {'size KB':>9} {'SSIM':>7} {'encode s':>9} {'CPU s':>7} {'CPU':>6}"
    print(head + (f" {'x264 Ginstr':>11} {'instr':>6}" if count else ""))
    for name, j, nbytes, s, secs, cpu, ins in rows:
        line = f"{name:56} {j[0]:6.3f} / {j[1]:.3f} {nbytes / 1024:9.0f} {s:7.4f} {secs:9.2f} {cpu:7.2f} {cpu / base[5]:5.2f}x"
        print(line + (f" {ins / 1e9:11.2f} {ins / base[6]:5.2f}x" if count else ""))
    if count:
        print(f"instructions: libx264 alone, first {count} frames, one thread, under callgrind")


if __name__ == "__main__":
    main()
