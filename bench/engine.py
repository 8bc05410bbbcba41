"""Motion engine benchmark: our render vs pure encode vs ffmpeg zoompan vs moviepy, jitter, memory.

Run with `make bench` (or `.venv/bin/python bench/engine.py [--runs N]`). Every tool encodes with
the engine's shipped x264 preset and CRF, on the same committed 2400x1600 JPEG (bench/input-1080p.jpg,
made from tests/fixtures/coffee.png) to 1920x1280. Each time is the median of N runs (default 3).

Jitter: a pure zoom 1.00 -> 1.20, linear in time, centred, rendered by each tool. On the decoded
frames, phase correlation gives the displacement d_t of an off-centre 128 px patch between frames
t and t+1; jitter is the standard deviation of the frame-to-frame change d_{t+1} - d_t (x and y
combined as sqrt(var_x + var_y)). For a constant-rate zoom the true change is ~0, so what remains
is stepping from integer rounding plus encoder noise. The noise floor is the same measure on a
clip with no motion at all, encoded the same way.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
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

from generator.engine import RenderOptions, decode_image, output_size, render_video  # noqa: E402
from generator.engine.encode import CRF, PRESET, encode_frames  # noqa: E402
from generator.engine.render import Stage  # noqa: E402
from generator.engine.render import render_plan as _render_plan  # noqa: E402

INPUT = ROOT / "bench" / "input-1080p.jpg"
FFMPEG = shutil.which("ffmpeg") or ("/usr/bin/ffmpeg" if os.path.exists("/usr/bin/ffmpeg") else None)
ZOOM_END = 1.2
PATCH = (0.74, 0.30)  # off-centre: a centred patch would not move under a centred zoom


def ensure_input() -> None:
    """Create the committed bench input from a fixture photo if it is missing."""
    if INPUT.exists():
        return
    src = cv2.imread(str(ROOT / "tests" / "fixtures" / "coffee.png"))
    big = cv2.resize(src, (2400, 1600), interpolation=cv2.INTER_LANCZOS4)
    cv2.imwrite(str(INPUT), big, [cv2.IMWRITE_JPEG_QUALITY, 90])


def median_time(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def pure_zoom_plan(seconds: int, easing: str = "linear") -> dict:
    return {
        "version": 1,
        "duration": seconds,
        "fps": 30,
        "frames": seconds * 30,
        "moves": [{"type": "zoom_in", "start": 0.0, "end": float(seconds), "easing": easing, "amount": ZOOM_END - 1.0, "focus": [0.5, 0.5]}],
        "effects": [],
    }


def static_plan(seconds: int) -> dict:
    return {"version": 1, "duration": seconds, "fps": 30, "frames": seconds * 30, "moves": [], "effects": []}


def _upsampled_dft(data: np.ndarray, region: int, factor: int, offsets: np.ndarray) -> np.ndarray:
    """Cross-correlation around a point at 1/factor px resolution (Guizar-Sicairos 2008)."""
    for n, off in list(zip(data.shape, offsets, strict=True))[::-1]:
        kernel = np.exp(-2j * np.pi * (np.arange(region) - off)[:, None] * np.fft.fftfreq(n, factor))
        data = np.tensordot(kernel, data, axes=(1, -1))
    return data


def patch_shift(a: np.ndarray, b: np.ndarray, win: np.ndarray, *, power: float, factor: int = 100) -> tuple[float, float]:
    """Displacement (dx, dy) of b's content relative to a, to 1/factor px.

    The cross-power spectrum is divided by its magnitude**power: power 1 is classic phase
    correlation (OpenCV's phaseCorrelate, whose 5x5 centroid peak biases sub-pixel shifts by
    up to ~0.2 px), 0.5 a partially normalised phase correlation, 0 plain cross-correlation.
    The peak is refined with an upsampled DFT instead of a centroid.
    """
    fa = np.fft.fft2((a - a.mean()) * win)
    fb = np.fft.fft2((b - b.mean()) * win)
    prod = fa * fb.conj()
    if power:
        prod /= (np.abs(prod) + 1e-9) ** power
    cc = np.fft.ifft2(prod)
    shape = np.array(cc.shape)
    peak = np.array(np.unravel_index(np.argmax(np.abs(cc)), cc.shape), float)
    peak[peak > shape // 2] -= shape[peak > shape // 2]
    peak = np.round(peak * factor) / factor
    region = int(np.ceil(factor * 1.5))
    centre = np.fix(region / 2.0)
    up = _upsampled_dft(prod.conj(), region, factor, centre - peak * factor).conj()
    fine = np.array(np.unravel_index(np.argmax(np.abs(up)), up.shape), float) - centre
    dy, dx = peak + fine / factor
    return -dx, -dy


def jitter(path: str) -> tuple[float, float]:
    """Std of the frame-to-frame change of an off-centre patch's displacement (px), two estimators."""
    size = 128
    win = cv2.createHanningWindow((size, size), cv2.CV_32F)
    prev = None
    shifts: dict[float, list] = {0.5: [], 0.0: []}
    with av.open(path) as c:
        for f in c.decode(video=0):
            g = f.to_ndarray(format="gray").astype(np.float32)
            h, w = g.shape
            x0, y0 = int(PATCH[0] * w - size / 2), int(PATCH[1] * h - size / 2)
            p = g[y0 : y0 + size, x0 : x0 + size]
            if prev is not None:
                for power, out in shifts.items():
                    out.append(patch_shift(prev, p, win, power=power))
            prev = p
    res = []
    for power in (0.5, 0.0):
        d = np.diff(np.array(shifts[power][2:-2]), axis=0)
        res.append(float(np.sqrt(d[:, 0].var() + d[:, 1].var())))
    return res[0], res[1]


def ffmpeg_zoompan(out: str, prescale: bool) -> None:
    w, h = 1920, 1280
    zoom = f"zoompan=z='1+{ZOOM_END - 1.0}*on/150':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=150:s={w}x{h}:fps=30"
    vf = ("scale=8000:-1," + zoom) if prescale else zoom
    cmd = [FFMPEG, "-y", "-loglevel", "error", "-i", str(INPUT), "-vf", vf, "-frames:v", "150", "-c:v", "libx264",
           "-preset", PRESET, "-crf", str(CRF), "-pix_fmt", "yuv420p", "-movflags", "+faststart", out]
    subprocess.run(cmd, check=True)


def moviepy_zoom(out: str, base: np.ndarray) -> None:
    from moviepy import CompositeVideoClip, ImageClip

    clip = ImageClip(base).with_duration(5).resized(lambda t: 1 + (ZOOM_END - 1.0) * t / 5).with_position("center")
    comp = CompositeVideoClip([clip], size=(base.shape[1], base.shape[0]))
    comp.write_videofile(out, fps=30, codec="libx264", preset=PRESET, audio=False, logger=None,
                         ffmpeg_params=["-crf", str(CRF), "-pix_fmt", "yuv420p"])


def capture_frames(pixels: np.ndarray, plan: dict, size: tuple[int, int], path: str) -> np.memmap:
    """Render a plan's frames into a memory-mapped file (for the pure-encode baseline)."""
    stage = Stage(pixels, plan, size[0], size[1], None, 0)
    n = size[0] * size[1] * 3 // 2
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=(stage.total, n))
    for i in range(stage.total):
        mm[i] = stage.frame(i)
    mm.flush()
    return mm


def pure_encode(pixels: np.ndarray, plan: dict, size: tuple[int, int], tmp: Path, runs: int) -> float:
    """Median time to encode exactly the frames a plan renders, read back from memory."""
    raw = tmp / "frames.raw"
    holder = [capture_frames(pixels, plan, size, str(raw))]
    total = plan["frames"]
    try:
        secs, _ = median_time(lambda: encode_frames(str(tmp / "enc.mp4"), size[0], size[1], total, lambda: iter(holder[0]), threaded=False), runs)
    finally:
        holder.clear()  # drop the memory map before deleting its file
        raw.unlink()
    return secs


MEMORY_CHILD = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from generator.engine import RenderOptions, decode_image, render_video
data = open(sys.argv[2], 'rb').read()
t0 = time.perf_counter()
d = decode_image(data)
r = render_video(d.pixels, RenderOptions(prompt='zoom in'), video_path=sys.argv[3], poster_path=sys.argv[4], source_size=(d.width, d.height))
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, d.width, d.height, d.pixels.shape[1], d.pixels.shape[0], r.width, r.height, round(time.perf_counter() - t0, 2), hwm)
"""


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-moviepy", action="store_true")
    args = ap.parse_args()
    runs = args.runs
    ensure_input()
    data = INPUT.read_bytes()
    decoded = decode_image(data)
    size = output_size(decoded.width, decoded.height)
    print(f"input {INPUT.relative_to(ROOT)} {decoded.width}x{decoded.height} -> output {size[0]}x{size[1]}, "
          f"x264 preset={PRESET} crf={CRF}, median of {runs}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, float | None, str]] = []
    jit: list[tuple[str, float | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        opts5 = RenderOptions(prompt="zoom in")
        opts10 = RenderOptions(prompt="zoom in", duration=10)

        # Peak memory of a fresh process decoding a 40 MP JPEG and rendering 5 s.
        big = cv2.resize(cv2.imread(str(INPUT)), (7744, 5163), interpolation=cv2.INTER_CUBIC)
        big_path = t / "40mp.jpg"
        cv2.imwrite(str(big_path), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        del big
        mems = []
        for _ in range(runs):
            # Linux carries a parent's peak RSS into a child it spawns (vfork/fork then exec); a
            # tiny shell in between forks the measured process from its own small image.
            cmd = '"$0" -c "$1" "$2" "$3" "$4" "$5"; :'
            out = subprocess.run(["/bin/sh", "-c", cmd, sys.executable, MEMORY_CHILD, str(ROOT), str(big_path), str(t / "m.mp4"), str(t / "m.jpg")],
                                 check=True, capture_output=True, text=True).stdout.split()
            mems.append(int(out[0]) / 1024)
        mem_info = out

        dec_t, _ = median_time(lambda: decode_image(data), runs)
        print(f"decode_image: {dec_t:.3f} s")

        results = {}

        def ours(opts, name):
            def run():
                d = decode_image(data)
                results[name] = render_video(d.pixels, opts, video_path=str(t / f"{name}.mp4"), poster_path=str(t / f"{name}.jpg"), source_size=(d.width, d.height))
            return run

        ours5, all5 = median_time(ours(opts5, "ours5"), runs)
        ours10, all10 = median_time(ours(opts10, "ours10"), runs)

        # Pure encode of exactly the frames our engine produced (same plan), same encoder settings.
        plan5, plan10 = results["ours5"].plan, results["ours10"].plan
        enc5 = pure_encode(decoded.pixels, plan5, size, t, runs)
        enc10 = pure_encode(decoded.pixels, plan10, size, t, runs)

        rows.append(("ours, 5 s (decode + plan + render + encode + poster)", ours5, f"runs {', '.join(f'{x:.2f}' for x in all5)}"))
        rows.append(("pure encode of the same 150 frames", enc5, ""))
        rows.append(("ours, 10 s", ours10, f"runs {', '.join(f'{x:.2f}' for x in all10)}"))
        rows.append(("pure encode of the same 300 frames", enc10, ""))

        # Pure linear zoom by our engine (for jitter, and a like-for-like time vs ffmpeg/moviepy).
        lin = pure_zoom_plan(5)
        ourlin, _ = median_time(lambda: _render_plan(decoded.pixels, lin, video_path=str(t / "ourlin.mp4"), poster_path=None, out_size=size), runs)
        rows.append(("ours, pure linear zoom 1.0->1.2, 5 s (no decode)", ourlin, ""))
        jit.append(("ours (sub-pixel warpAffine, linear zoom)", jitter(str(t / "ourlin.mp4"))))
        _render_plan(decoded.pixels, pure_zoom_plan(5, "smooth"), video_path=str(t / "oureased.mp4"), poster_path=None, out_size=size)
        jit.append(("ours, eased zoom as shipped (includes the easing's own acceleration)", jitter(str(t / "oureased.mp4"))))
        _render_plan(decoded.pixels, static_plan(5), video_path=str(t / "static.mp4"), poster_path=None, out_size=size)
        floor = jitter(str(t / "static.mp4"))

        if FFMPEG:
            zp, _ = median_time(lambda: ffmpeg_zoompan(str(t / "zp.mp4"), False), runs)
            rows.append(("ffmpeg zoompan", zp, ""))
            jit.append(("ffmpeg zoompan", jitter(str(t / "zp.mp4"))))
            zp8, _ = median_time(lambda: ffmpeg_zoompan(str(t / "zp8.mp4"), True), runs)
            rows.append(("ffmpeg zoompan after 8000 px prescale", zp8, ""))
            jit.append(("ffmpeg zoompan, 8000 px prescale", jitter(str(t / "zp8.mp4"))))
        else:
            print("note: ffmpeg not found; zoompan comparison skipped")
            zp = zp8 = None

        mp = None
        if not args.skip_moviepy:
            try:
                import moviepy  # noqa: F401

                base = cv2.resize(decoded.pixels, size, interpolation=cv2.INTER_AREA)
                mp, _ = median_time(lambda: moviepy_zoom(str(t / "mp.mp4"), base), runs)
                rows.append(("moviepy resize zoom", mp, ""))
                jit.append(("moviepy resize zoom", jitter(str(t / "mp.mp4"))))
            except ImportError:
                print("note: moviepy not importable; skipped")


    print()
    print(f"{'what':58} {'median s':>9}  {'vs ours 5 s':>12}")
    for name, secs, extra in rows:
        ratio = "" if secs is None else f"{secs / ours5:11.2f}x"
        print(f"{name:58} {secs:9.2f}  {ratio:>12}  {extra}")
    print()
    r5, r10 = ours5 / enc5, ours10 / enc10
    print(f"ratio ours / pure encode: 5 s {r5:.3f}, 10 s {r10:.3f}   (target <= 1.10: {'met' if max(r5, r10) <= 1.10 else 'MISSED'})")
    if zp is not None:
        print(f"ffmpeg zoompan / ours 5 s: {zp / ours5:.2f}x; with prescale: {zp8 / ours5:.2f}x   (target > 1: {'met' if min(zp, zp8) > ours5 * 1.03 else 'MISSED'})")
        print(f"ffmpeg zoompan / ours pure zoom (like for like): {zp / ourlin:.2f}x; with prescale: {zp8 / ourlin:.2f}x")
    if mp is not None:
        print(f"moviepy / ours 5 s: {mp / ours5:.2f}x   (target >= 2: {'met' if mp / ours5 >= 2 else 'MISSED'})")
    print()
    print("jitter (px): std of the frame-to-frame change of an off-centre 128 px patch's displacement")
    print(f"  {'':66} {'phase corr (|X|^0.5)':>21} {'cross-corr':>11}")
    print(f"  {'noise floor: no-motion clip, same encoder':66} {floor[0]:21.3f} {floor[1]:11.3f}")
    for name, j in jit:
        print(f"  {name:66} {j[0]:21.3f} {j[1]:11.3f}")
    ours_j = jit[0][1]
    print(f"  target ours <= 0.05 px: phase corr {'met' if ours_j[0] <= 0.05 else 'MISSED'}, cross-corr {'met' if ours_j[1] <= 0.05 else 'MISSED'}")
    print()
    peak = statistics.median(mems)
    print(f"peak memory (ru_maxrss of a fresh process) for a {mem_info[1]}x{mem_info[2]} JPEG "
          f"(working {mem_info[3]}x{mem_info[4]}, output {mem_info[5]}x{mem_info[6]}, {mem_info[7]} s): "
          f"{peak:.0f} MB (runs {', '.join(f'{m:.0f}' for m in mems)}; VmHWM {int(mem_info[8]) / 1024:.0f} MB)   (target <= 500 MB: {'met' if peak <= 500 else 'MISSED'})")
    print(f"bench process peak: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
