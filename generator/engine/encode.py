"""H.264 encoding with PyAV, fed by a render thread so synthesis overlaps the encoder."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction

import av
import numpy as np

FPS = 30
# Chosen from the preset/CRF measurements on this machine type (MEASUREMENTS.md, 150 frames at
# 1920x1280): veryfast CRF 20 scores SSIM 0.991 vs 0.993 for medium CRF 20 while encoding ~2.4x
# faster (2.95 s vs 7.21 s) and writing smaller files (0.88 vs 1.40 MB); ultrafast/superfast are
# barely faster but 1.6-5x bigger. bench/engine.py runs every comparison at this setting.
PRESET = "veryfast"
CRF = 20
_DONE = object()


class _Failure:
    """Carries an exception from the render thread to the encoding thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def open_h264(path: str, width: int, height: int, *, preset: str = PRESET, crf: int = CRF):
    """Open an MP4 for writing with an H.264 High, yuv420p, BT.709-tagged stream."""
    container = av.open(path, mode="w", format="mp4", container_options={"movflags": "+faststart"})
    stream = container.add_stream("libx264", rate=FPS)
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, FPS)
    cc = stream.codec_context
    # PyAV defaults to slice threading, which makes libx264 use sliced threads: slower on two
    # cores and worse compression. Frame threads, like ffmpeg's CLI.
    cc.thread_type = "FRAME"
    cc.time_base = Fraction(1, FPS)
    cc.color_range = 1  # MPEG (limited) range
    cc.color_primaries = 1  # BT.709
    cc.color_trc = 1
    cc.colorspace = 1
    options: dict[str, object] = {
        "preset": preset,
        "crf": str(crf),
        # Write the same tags into the bitstream VUI so every player reads BT.709.
        # b-adapt=0 (a fixed B-frame pattern) keeps the video deterministic (same image and options, same file): with
        # adaptive B-frame placement plus mbtree, this libx264 (core 165) reads uninitialised
        # heap memory, so the bitstream followed whatever garbage the heap held. Proof: one
        # process, one thread, identical input, and MALLOC_PERTURB_=85 vs 170 gave different
        # files; with b-adapt=0 (or mbtree=0, or no B-frames) they are identical, and 50 of 50
        # frame-threaded encodes in two competing processes matched. Cost at 1920x1280: ~5%
        # bigger files at the same PSNR, same speed (mbtree=0 would cost ~75%).
        # aq-mode=2 (auto-variance AQ) lowers a pure zoom's jitter from 0.32 to 0.23 px with a
        # smaller file, the same SSIM and no slower (bench/encoder.py; README, "Encoder setting").
        "x264-params": "colorprim=bt709:transfer=bt709:colormatrix=bt709:b-adapt=0:aq-mode=2",
    }
    if crf > 0:  # lossless (crf 0, used by the bench) needs the High 4:4:4 Predictive profile
        options["profile"] = "high"
    stream.options = options
    return container, stream


def _frame_from_i420(buf: np.ndarray | av.VideoFrame, width: int, height: int, index: int) -> av.VideoFrame:
    """Timestamp and tag a rendered frame; a packed yuv420p buffer is copied into a new frame."""
    if isinstance(buf, av.VideoFrame):
        frame = buf
    else:
        frame = av.VideoFrame.from_ndarray(buf.reshape(height * 3 // 2, width), format="yuv420p")
    frame.pts = index
    frame.time_base = Fraction(1, FPS)
    frame.color_range = 1
    frame.colorspace = 1
    return frame


def encode_frames(
    path: str,
    width: int,
    height: int,
    total: int,
    produce: Callable[[], Iterator[np.ndarray | av.VideoFrame]],
    *,
    progress: Callable[[int, int], None] | None = None,
    preset: str = PRESET,
    crf: int = CRF,
    threaded: bool = True,
) -> None:
    """Encode `total` yuv420p frames from `produce()`; rendering runs on its own thread.

    Frames come from the generator on a worker thread (OpenCV releases the GIL), the caller's
    thread feeds libx264 (its own threads do the heavy work) and calls `progress`. If
    `progress` raises, rendering stops and the exception propagates; the partial file is removed.
    """
    container, stream = open_h264(path, width, height, preset=preset, crf=crf)
    stop = threading.Event()
    # At most 4 queued + 1 encoding + 1 waiting to be queued + 1 rendering = 7 frames in flight:
    # render.Stage's ring of 8 buffers relies on it.
    frames: queue.Queue = queue.Queue(maxsize=4)
    worker: threading.Thread | None = None

    def render() -> None:
        try:
            for i, buf in enumerate(produce()):
                if stop.is_set():
                    return
                item = _frame_from_i420(buf, width, height, i)
                while not stop.is_set():
                    try:
                        frames.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
            frames.put(_DONE)
        except BaseException as exc:  # hand every failure to the encoding thread
            frames.put(_Failure(exc))

    def items() -> Iterator[av.VideoFrame]:
        if not threaded:
            for i, buf in enumerate(produce()):
                yield _frame_from_i420(buf, width, height, i)
            return
        while True:
            item = frames.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    ok = False
    try:
        if threaded:
            worker = threading.Thread(target=render, name="engine-render", daemon=True)
            worker.start()
        count = 0
        for frame in items():
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
            if progress is not None:
                progress(count, total)
        if count != total:
            raise RuntimeError(f"rendered {count} frames, expected {total}")
        for packet in stream.encode(None):
            container.mux(packet)
        ok = True
    finally:
        stop.set()
        if worker is not None:
            # Drain so a blocked producer can see the stop flag and exit.
            while worker.is_alive():
                with contextlib.suppress(queue.Empty):
                    frames.get(timeout=0.05)
            worker.join()
        try:
            container.close()
        except Exception:
            if ok:
                raise
        if not ok:
            with contextlib.suppress(OSError):
                os.remove(path)
