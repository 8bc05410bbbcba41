"""H.264 encoding with PyAV, fed by a render thread so synthesis overlaps the encoder."""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction

import av
import cv2
import numpy as np

FPS = 30
# Chosen from the preset/CRF measurements on this machine type (MEASUREMENTS.md, 150 frames at
# 1920x1280): veryfast CRF 20 scores SSIM 0.991 vs 0.993 for medium CRF 20 while encoding ~2.4x
# faster (2.95 s vs 7.21 s) and writing smaller files (0.88 vs 1.40 MB); ultrafast/superfast are
# barely faster but 1.6-5x bigger. bench/engine.py runs every comparison at this setting.
PRESET = "veryfast"
CRF = 20
# A loop's last frames (this many at 30 fps) are encoded toward the decoded first frame, at this
# many QP below the CRF, with the options that let x264 code small residuals (see _LoopCloser and
# docs/formats.md, "Loops"). A slow loop (one whose neighbouring frames barely differ) also codes
# its very last frame at LOOP_SLOW_LAST_QP.
LOOP_TAIL = 5
LOOP_TAIL_QP_DROP = 4
LOOP_TAIL_OPTIONS = "fast-pskip=0,dct-decimate=0,trellis=2"
LOOP_SLOW_LAST_QP = 5
# The render thread draws up to this many frames ahead of libx264, at this much lower priority
# than the encoder's own threads (docs/formats.md, "Speed"): libx264 leaves the two cores idle
# now and then, and a render thread that is ahead draws there instead of taking turns with it.
# The nice is the thread's own against every thread of the machine, other workers' included.
AHEAD = 8
RENDER_NICE = 10
# Frame buffers in use at most: AHEAD queued + 1 encoding + 1 being rendered or waiting to be
# queued (frames.FrameRenderer's ring keeps two more).
IN_FLIGHT = AHEAD + 2

_DONE = object()


class _Failure:
    """Carries an exception from the render thread to the encoding thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def loop_tail(total: int) -> int:
    """How many last frames of a loop of `total` frames close it (none for very short previews)."""
    return LOOP_TAIL if total >= 10 * LOOP_TAIL else 0


def open_h264(
    path: str,
    width: int,
    height: int,
    *,
    preset: str = PRESET,
    crf: int = CRF,
    loop_frames: int | None = None,
    slow_loop: bool = False,
):
    """Open an MP4 for writing with an H.264 High, yuv420p, BT.709-tagged stream.

    `loop_frames`: the clip is a loop of that many frames; its last frames are coded at a fixed,
    finer quantiser (x264 zones) so they can take on the first frame's coding noise (_LoopCloser);
    `slow_loop`: its very last frame near-losslessly as well.
    """
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
    params = "colorprim=bt709:transfer=bt709:colormatrix=bt709:b-adapt=0:aq-mode=2"
    tail = loop_tail(loop_frames) if loop_frames and crf > 0 else 0
    if tail and loop_frames:
        # x264 zones: "first,last,q=QP,option=value,..." joined by "/"; x264 reconfigures the
        # encoder with a zone's options while inside it.
        tail_qp = max(1, crf - LOOP_TAIL_QP_DROP)
        last = loop_frames - 1
        if slow_loop and tail_qp > LOOP_SLOW_LAST_QP:
            zones = [(loop_frames - tail, last - 1, tail_qp), (last, last, LOOP_SLOW_LAST_QP)]
        else:
            zones = [(loop_frames - tail, last, tail_qp)]
        params += ":zones=" + "/".join(f"{a},{b},q={q},{LOOP_TAIL_OPTIONS}" for a, b, q in zones)
    options: dict[str, object] = {
        "preset": preset,
        "crf": str(crf),
        "x264-params": params,
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


class _LoopCloser:
    """Make a loop close in the decoded video, not only in the rendered frames.

    The first frame is intra-coded, the last ones are predicted down a chain of 150 frames: their
    coding noise differs, so even when the rendered last frame is one smooth step before the first,
    the decoded ones differ by more than two neighbours (which share their noise). The loop's
    ends are still (every loop move eases in and out at the seam), so the last frames are fed
    with the first frame's coding error added, fading in over the tail (E = decoded frame 0 minus
    rendered frame 0, read back from the encoder's first packet as soon as it is out), and coded
    at a finer fixed quantiser (open_h264): the decoder ends where it begins.
    """

    def __init__(self, stream, total: int) -> None:
        self.stream = stream
        self.total = total
        self.tail = loop_tail(total)
        self.first: np.ndarray | None = None
        self.error: np.ndarray | None = None

    def fed(self, index: int, frame: av.VideoFrame) -> av.VideoFrame:
        """The frame to encode in place of rendered frame `index`."""
        if index == 0 and self.tail:
            self.first = frame.to_ndarray(format="yuv420p").astype(np.int16)
        start = self.total - self.tail
        if self.error is None or index < start:
            return frame
        w = (index - start + 1) / self.tail
        shifted = frame.to_ndarray(format="yuv420p").astype(np.int16) + np.round(w * self.error).astype(np.int16)
        out = av.VideoFrame.from_ndarray(np.clip(shifted, 0, 255).astype(np.uint8), format="yuv420p")
        return _frame_from_i420(out, frame.width, frame.height, index)

    def muxed(self, packet: av.Packet) -> None:
        """Watch the encoder's output for the first frame and decode it."""
        if self.first is None or self.error is not None or packet.pts != 0:
            return
        decoder = av.CodecContext.create("h264", "r")
        decoder.extradata = self.stream.codec_context.extradata
        decoded = [*decoder.decode(packet), *decoder.decode(None)]
        if decoded:
            self.error = decoded[0].to_ndarray(format="yuv420p").astype(np.int16) - self.first


@contextlib.contextmanager
def _opencv_single_threaded() -> Iterator[None]:
    """Draw frames with OpenCV on the render thread alone (docs/formats.md, "Speed").

    libx264's threads keep both cores busy; OpenCV's own pool splitting each warp would only add
    hand-offs and spinning to the same cores. A process-wide setting: the engine renders one
    video at a time per process, and the encoding thread makes no OpenCV call meanwhile.
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def _lower_own_priority(by: int) -> None:
    """Make the calling thread `by` nice levels less urgent (Linux, where a thread has its own; elsewhere nothing).

    A one-way step: an unprivileged thread cannot take it back, so it is taken only by the render
    thread, which ends with its video. Its lease is kept by another thread (services.worker).
    """
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))


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
    loop: bool = False,
    slow_loop: bool = False,
) -> None:
    """Encode `total` yuv420p frames from `produce()`; rendering runs on its own thread.

    `loop`: the frames are a seamless loop; its end is encoded to meet its start (_LoopCloser).
    `slow_loop`: a loop whose picture moves little per frame, so its end must meet its start more
    closely still (open_h264).

    Frames come from the generator on a worker thread (OpenCV releases the GIL), the caller's
    thread feeds libx264 (its own threads do the heavy work) and calls `progress`. If
    `progress` raises, rendering stops and the exception propagates; the partial file is removed.
    """
    container, stream = open_h264(
        path, width, height, preset=preset, crf=crf, loop_frames=total if loop else None, slow_loop=slow_loop
    )
    closer = _LoopCloser(stream, total) if loop and crf > 0 else None
    stop = threading.Event()
    frames: queue.Queue = queue.Queue(maxsize=AHEAD)
    worker: threading.Thread | None = None

    def render() -> None:
        try:
            _lower_own_priority(RENDER_NICE)
            with _opencv_single_threaded():
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
            if closer is not None:
                frame = closer.fed(count, frame)
            for packet in stream.encode(frame):
                if closer is not None:
                    closer.muxed(packet)
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
