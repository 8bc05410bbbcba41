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

from generator.engine import RenderOptions, decode_image, make_plan, output_size, render_video  # noqa: E402
from generator.engine.encode import CRF, PRESET, encode_frames  # noqa: E402
from generator.engine.frames import FrameRenderer  # noqa: E402
from generator.engine.plan import Easing, Plan, ZoomIn  # noqa: E402
from generator.engine.render import _small_pages  # noqa: E402
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


def pure_zoom_plan(seconds: int, easing: Easing = "linear") -> Plan:
    zoom = ZoomIn(start=0.0, end=float(seconds), easing=easing, amount=ZOOM_END - 1.0, focus=(0.5, 0.5))
    return Plan(duration=seconds, fps=30, frames=seconds * 30, moves=(zoom,))


def static_plan(seconds: int) -> Plan:
    return Plan(duration=seconds, fps=30, frames=seconds * 30)


def _upsampled_dft(data: np.ndarray, region: int, factor: int, offsets: np.ndarray) -> np.ndarray:
    """Cross-correlation around a point at 1/factor px resolution (Guizar-Sicairos 2008)."""
    for n, off in list(zip(data.shape, offsets, strict=True))[::-1]:
        kernel = np.exp(-2j * np.pi * (np.arange(region) - off)[:, None] * np.fft.fftfreq(n, factor))
        data = np.tensordot(kernel, data, axes=(1, -1))
    return data


def patch_shift(
    a: np.ndarray, b: np.ndarray, win: np.ndarray, *, power: float, factor: int = 100
) -> tuple[float, float]:
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


CRF_OVERRIDE: int | None = None


def ffmpeg_zoompan(out: str, prescale: bool) -> None:
    w, h = 1920, 1280
    zoom = f"zoompan=z='1+{ZOOM_END - 1.0}*on/150':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=150:s={w}x{h}:fps=30"
    vf = ("scale=8000:-1," + zoom) if prescale else zoom
    cmd = [
        FFMPEG,
        "-y",
        "-loglevel",
        "error",
        "-i",
        str(INPUT),
        "-vf",
        vf,
        "-frames:v",
        "150",
        "-c:v",
        "libx264",
        "-preset",
        PRESET,
        "-crf",
        str(CRF if CRF_OVERRIDE is None else CRF_OVERRIDE),
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        out,
    ]
    subprocess.run(cmd, check=True)


def moviepy_zoom(out: str, base: np.ndarray, crf: int = CRF) -> None:
    from moviepy import CompositeVideoClip, ImageClip

    clip = ImageClip(base).with_duration(5).resized(lambda t: 1 + (ZOOM_END - 1.0) * t / 5).with_position("center")
    comp = CompositeVideoClip([clip], size=(base.shape[1], base.shape[0]))
    comp.write_videofile(
        out,
        fps=30,
        codec="libx264",
        preset=PRESET,
        audio=False,
        logger=None,
        ffmpeg_params=["-crf", str(crf), "-pix_fmt", "yuv420p"],
    )


def capture_frames(pixels: np.ndarray, plan: Plan, size: tuple[int, int], path: str) -> np.memmap:
    """Render a plan's frames into a memory-mapped file (for the pure-encode baseline)."""
    renderer = FrameRenderer(pixels, plan, size[0], size[1], None, 0)
    n = size[0] * size[1] * 3 // 2
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=(renderer.total, n))
    for i in range(renderer.total):
        mm[i] = renderer.frame(i)
    mm.flush()
    return mm


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


def cutout_costs(runs: int) -> None:
    """What the cut-out costs (docs/formats.md, "Cut-out edges"): per photo, the separation and its
    matting phases; per frame, an orbit with a light sweep drawn as layers. On the studio cup
    (tests/fixtures/product.png) at its size and enlarged to 1920x1440."""
    base = cv2.cvtColor(cv2.imread(str(ROOT / "tests" / "fixtures" / "product.png")), cv2.COLOR_BGR2RGB)
    t0 = time.perf_counter()
    import scipy.sparse  # noqa: F401  (what the matte imports: generator/engine/matting.py)

    print(f"import scipy.sparse: {(time.perf_counter() - t0) * 1000:.0f} ms")
    for width in (640, 1920):
        img = base if width == 640 else cv2.resize(base, (width, width * 3 // 4), interpolation=cv2.INTER_CUBIC)
        _cutout_at(img, runs)


def _cutout_at(img: np.ndarray, runs: int) -> None:
    from generator.engine import segment

    segment.separate(img)  # the first call imports scipy.sparse
    small = segment.small_copy(img)
    mask = segment.separate(img).mask
    assert mask is not None
    fg = (cv2.resize(mask, (small.shape[1], small.shape[0])) > 0.5).astype(np.uint8)
    plain = segment._plain_backdrop(small, fg)
    phases = {
        "separate (all)": lambda: segment.separate(img),
        "  plain backdrop": lambda: segment._plain_backdrop(small, fg),
        "  matte (closed-form + colours)": lambda: segment._matte(img, fg, plain),
        "  contact shadow": lambda: segment._contact_shadow(small, fg, plain),
    }
    print(f"photo {img.shape[1]}x{img.shape[0]}:")
    for name, fn in phases.items():
        print(f"  {name:34} {median_time(fn, runs)[0] * 1000:7.0f} ms")
    options = RenderOptions(prompt="orbit, light sweep", guidance_scale=0.85)
    plan, sep = make_plan(img, options)
    out = output_size(img.shape[1], img.shape[0])
    renderer = FrameRenderer(img, plan, out[0], out[1], sep, 0)
    for i in range(5):
        renderer.frame(i)

    def frames() -> None:
        for i in range(30, 90):
            renderer.frame(i)

    per_frame = median_time(frames, runs)[0] / 60
    print(f"  orbit + sweep frame at {out[0]}x{out[1]} (layered={renderer.layered}): {per_frame * 1000:.1f} ms")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-moviepy", action="store_true")
    ap.add_argument("--cutout", action="store_true", help="only the cut-out's costs (per photo, per frame)")
    args = ap.parse_args()
    runs = args.runs
    if args.cutout:
        cutout_costs(runs)
        return
    ensure_input()
    data = INPUT.read_bytes()
    decoded = decode_image(data)
    size = output_size(decoded.width, decoded.height)
    print(
        f"input {INPUT.relative_to(ROOT)} {decoded.width}x{decoded.height} -> output {size[0]}x{size[1]}, "
        f"x264 preset={PRESET} crf={CRF} for every tool, median of {runs} interleaved rounds, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    have_moviepy = False
    if not args.skip_moviepy:
        try:
            import moviepy  # noqa: F401

            have_moviepy = True
        except ImportError:
            print("note: moviepy not importable; skipped")
    if not FFMPEG:
        print("note: ffmpeg not found; zoompan comparison skipped")

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        # Peak memory of a fresh process decoding a 40 MP JPEG and rendering 5 s (measured first,
        # while this process is still small).
        big = cv2.resize(cv2.imread(str(INPUT)), (7744, 5163), interpolation=cv2.INTER_CUBIC)
        big_path = t / "40mp.jpg"
        cv2.imwrite(str(big_path), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        del big
        mems = []
        for _ in range(runs):
            # Linux carries a parent's peak RSS into a child it spawns (vfork/fork then exec); a
            # tiny shell in between forks the measured process from its own small image.
            cmd = '"$0" -c "$1" "$2" "$3" "$4" "$5"; :'
            out = subprocess.run(
                [
                    "/bin/sh",
                    "-c",
                    cmd,
                    sys.executable,
                    MEMORY_CHILD,
                    str(ROOT),
                    str(big_path),
                    str(t / "m.mp4"),
                    str(t / "m.jpg"),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            mems.append(int(out[0]) / 1024)
        mem_info = out
        big_path.unlink()

        opts = {5: RenderOptions(prompt="zoom in"), 10: RenderOptions(prompt="zoom in", duration=10)}

        def ours(seconds: int):
            def run():
                d = decode_image(data)
                render_video(
                    d.pixels,
                    opts[seconds],
                    video_path=str(t / f"ours{seconds}.mp4"),
                    poster_path=str(t / f"ours{seconds}.jpg"),
                    source_size=(d.width, d.height),
                )

            return run

        # The exact frames our engine renders for those two videos, for the pure-encode baseline.
        frames = {}
        for seconds in (5, 10):
            r = render_video(
                decoded.pixels, opts[seconds], video_path=str(t / "warm.mp4"), poster_path=str(t / "warm.jpg")
            )
            frames[seconds] = capture_frames(decoded.pixels, r.plan, size, str(t / f"frames{seconds}.raw"))

        def pure(seconds: int):
            def run():
                # In the pages the engine encodes in (render._small_pages), as bench/formats.py does.
                with _small_pages():
                    encode_frames(
                        str(t / f"enc{seconds}.mp4"),
                        size[0],
                        size[1],
                        seconds * 30,
                        lambda: iter(frames[seconds]),
                        threaded=False,
                    )

            return run

        def plan_video(plan: Plan, name: str, crf: int = CRF) -> str:
            """Render `plan` with our engine to <name>.mp4 (crf 0: lossless, the motion alone); return its path."""
            path = str(t / f"{name}.mp4")
            _render_plan(decoded.pixels, plan, video_path=path, poster_path=None, out_size=size, crf=crf)
            return path

        lin = pure_zoom_plan(5)
        tasks = {
            "ours5": ours(5),
            "enc5": pure(5),
            "ours10": ours(10),
            "enc10": pure(10),
            "ourlin": lambda: plan_video(lin, "ourlin"),
        }
        if FFMPEG:
            tasks["zp"] = lambda: ffmpeg_zoompan(str(t / "zp.mp4"), False)
            tasks["zp8"] = lambda: ffmpeg_zoompan(str(t / "zp8.mp4"), True)
        base = cv2.resize(decoded.pixels, size, interpolation=cv2.INTER_AREA)
        if have_moviepy:
            tasks["mp"] = lambda: moviepy_zoom(str(t / "mp.mp4"), base)
        times: dict[str, list[float]] = {k: [] for k in tasks}
        # Interleaved rounds: load from other processes drifts; each round sees all tools alike.
        for _ in range(runs):
            for name, fn in tasks.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        frames.clear()
        med = {k: statistics.median(v) for k, v in times.items()}

        # Jitter, as shipped (lossy, same encoder) and lossless (crf 0: the motion alone).
        jit: list[tuple[str, tuple[float, float], tuple[float, float] | None]] = []
        eased = pure_zoom_plan(5, "smooth")
        jit.append(
            (
                "ours: sub-pixel resize/warp, linear zoom",
                jitter(str(t / "ourlin.mp4")),
                jitter(plan_video(lin, "ourlin0", crf=0)),
            )
        )
        jit.append(
            (
                "ours: eased zoom as shipped (the easing accelerates)",
                jitter(plan_video(eased, "oureased")),
                jitter(plan_video(eased, "oureased0", crf=0)),
            )
        )
        if FFMPEG:
            global CRF_OVERRIDE
            CRF_OVERRIDE = 0
            ffmpeg_zoompan(str(t / "zp0.mp4"), False)
            ffmpeg_zoompan(str(t / "zp80.mp4"), True)
            CRF_OVERRIDE = None
            jit.append(("ffmpeg zoompan", jitter(str(t / "zp.mp4")), jitter(str(t / "zp0.mp4"))))
            jit.append(("ffmpeg zoompan, 8000 px prescale", jitter(str(t / "zp8.mp4")), jitter(str(t / "zp80.mp4"))))
        if have_moviepy:
            moviepy_zoom(str(t / "mp0.mp4"), base, crf=0)
            jit.append(("moviepy resize zoom", jitter(str(t / "mp.mp4")), jitter(str(t / "mp0.mp4"))))
        still = static_plan(5)
        floor = (jitter(plan_video(still, "static")), jitter(plan_video(still, "static0", crf=0)))

    ours5, ours10, enc5, enc10, ourlin = med["ours5"], med["ours10"], med["enc5"], med["enc10"], med["ourlin"]
    labels = {
        "ours5": "ours, 5 s (decode + plan + render + encode + poster)",
        "enc5": "pure encode of the same 150 frames",
        "ours10": "ours, 10 s",
        "enc10": "pure encode of the same 300 frames",
        "ourlin": "ours, pure linear zoom 1.0->1.2, 5 s (render + encode)",
        "zp": "ffmpeg zoompan, same zoom",
        "zp8": "ffmpeg zoompan after 8000 px prescale",
        "mp": "moviepy resize zoom, same zoom",
    }
    print()
    print(f"{'what':56} {'median s':>9} {'/ ours 5 s':>11}   runs")
    for k, v in med.items():
        print(f"{labels[k]:56} {v:9.2f} {v / ours5:10.2f}x   {', '.join(f'{x:.2f}' for x in times[k])}")
    print()

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    r5, r10 = ours5 / enc5, ours10 / enc10
    print(f"ours / pure encode: 5 s {r5:.3f}, 10 s {r10:.3f}   (target <= 1.10: {verdict(max(r5, r10) <= 1.10)})")
    if "zp" in med:
        zp, zp8 = med["zp"], med["zp8"]
        print(
            f"ffmpeg zoompan / ours 5 s: {zp / ours5:.2f}x, prescaled: {zp8 / ours5:.2f}x   (target: faster than both, ties within 3%: {verdict(min(zp, zp8) > ours5 * 1.03)})"
        )
        print(
            f"  like for like (same pure zoom, no effects): zoompan / ours {zp / ourlin:.2f}x, prescaled / ours {zp8 / ourlin:.2f}x"
        )
    if "mp" in med:
        print(
            f"moviepy / ours 5 s: {med['mp'] / ours5:.2f}x; like for like {med['mp'] / ourlin:.2f}x   (target >= 2: {verdict(med['mp'] / ours5 >= 2)})"
        )
    print()
    print("jitter (px): std of the frame-to-frame change of an off-centre 128 px patch's displacement,")
    print(
        "  two estimators: phase correlation with |X|^0.5 normalisation / plain cross-correlation, both refined to 0.01 px"
    )
    print(f"  {'':56} {'shipped crf ' + str(CRF):>21} {'lossless (crf 0)':>21}")
    print(
        f"  {'noise floor: no-motion clip':56} {floor[0][0]:10.3f} / {floor[0][1]:.3f} {floor[1][0]:13.3f} / {floor[1][1]:.3f}"
    )
    for name, lossy, lossless in jit:
        print(f"  {name:56} {lossy[0]:10.3f} / {lossy[1]:.3f} {lossless[0]:13.3f} / {lossless[1]:.3f}")
    ours_lossy, ours_lossless = jit[0][1], jit[0][2]
    print(
        f"  target ours <= 0.05 px: at crf {CRF} {verdict(max(ours_lossy) <= 0.05)}, lossless {verdict(max(ours_lossless) <= 0.05)}"
    )
    print()
    peak = statistics.median(mems)
    print(
        f"peak memory (ru_maxrss of a fresh process) decoding a {mem_info[1]}x{mem_info[2]} JPEG "
        f"(working {mem_info[3]}x{mem_info[4]}) and rendering 5 s at {mem_info[5]}x{mem_info[6]}: "
        f"{peak:.0f} MB (runs {', '.join(f'{m:.0f}' for m in mems)}; VmHWM {int(mem_info[8]) / 1024:.0f} MB)   (target <= 500 MB: {verdict(peak <= 500)})"
    )


if __name__ == "__main__":
    main()
