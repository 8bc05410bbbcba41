"""An upstream's video made ours: probe it, remux to a faststart MP4 (transcode only if not H.264), a poster.

PyAV only, no Django (docs/engines.md).
"""

from __future__ import annotations

from fractions import Fraction

import av


class VideoRejected(ValueError):
    """The file is not a usable video; the message is user-facing."""


def remux_video(source: str, *, video_path: str, poster_path: str, expected_s: float) -> float:
    """Check source is a video lasting within 20% of expected_s, write video_path and poster_path; return seconds."""
    try:
        container = av.open(source)
    except (av.error.FFmpegError, OSError, ValueError):
        raise VideoRejected("the upstream's result is not a video") from None
    with container:
        streams = container.streams.video
        if not streams:
            raise VideoRejected("the upstream's result has no video stream")
        stream = streams[0]
        seconds = float(container.duration / av.time_base) if container.duration else 0.0
        if not seconds and stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        if abs(seconds - expected_s) > 0.2 * expected_s:
            raise VideoRejected(f"the upstream's video lasts {seconds:.1f} s, not the {expected_s:g} s asked")
        if stream.codec_context.name == "h264":
            _copy(container, stream, video_path)
        else:
            _transcode(container, stream, video_path)
    _poster(video_path, poster_path)
    return seconds


def _copy(container, stream, video_path: str) -> None:
    with av.open(video_path, "w", format="mp4", options={"movflags": "+faststart"}) as out:
        target = out.add_stream_from_template(stream)
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = target
            out.mux(packet)


def _transcode(container, stream, video_path: str) -> None:
    rate = stream.average_rate or Fraction(25)
    with av.open(video_path, "w", format="mp4", options={"movflags": "+faststart"}) as out:
        target = out.add_stream("libx264", rate=rate)
        target.width = stream.codec_context.width // 2 * 2
        target.height = stream.codec_context.height // 2 * 2
        target.pix_fmt = "yuv420p"
        for frame in container.decode(stream):
            image = frame.reformat(width=target.width, height=target.height, format="yuv420p")
            image.pts = None
            for packet in target.encode(image):
                out.mux(packet)
        for packet in target.encode():
            out.mux(packet)


def _poster(video_path: str, poster_path: str) -> None:
    with av.open(video_path) as container:
        for frame in container.decode(video=0):
            frame.to_image().save(poster_path, "JPEG", quality=85)
            return
    raise VideoRejected("the upstream's video has no frames")
