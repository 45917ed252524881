"""Small test videos made with PyAV at test time, and ways to damage them.

Importable from any test as ``from video_fixtures import ...`` (tests/ is on sys.path under
pytest's default import mode).

Content of ``moving_pattern`` clips: frame ``t`` has a flat background at grey level
``frame_levels(T)[t]`` (so ``frame_numbers`` recovers which source frame a decoded frame is, even
after lossy coding), a saturated red block in the top-left corner (so a rotation's direction
shows) and a white square that moves one step per frame (so codecs see motion).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np

FPS = 8
MARKER = 6  # side of the red orientation block, pixels
_INPUT_FORMATS = {1: "gray", 3: "rgb24", 4: "rgba"}


def frame_levels(num_frames: int) -> np.ndarray:
    """Background grey level of each frame of a ``num_frames`` pattern: evenly spread over
    [16, 232], far enough apart for lossy codecs to keep frames distinguishable up to ~60."""
    return np.linspace(16, 232, num_frames).round().astype(np.uint8)


def moving_pattern(
    num_frames: int = 16, height: int = 24, width: int = 32, channels: int = 3
) -> np.ndarray:
    """A clip whose frames say which frame they are (see the module docstring).

    Returns:
        uint8 ``[T, H, W, C]``; C = 1 (grey), 3 (RGB) or 4 (RGBA, alpha 255).
    """
    if height < 2 * MARKER or width < 2 * MARKER:
        raise ValueError(f"moving_pattern: {height}x{width} is too small; use >= {2 * MARKER}")
    clip = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    clip[...] = frame_levels(num_frames)[:, None, None, None]
    clip[:, :MARKER, :MARKER] = (255, 0, 0)
    square = 4
    row = height // 2 - square // 2
    for t in range(num_frames):
        col = MARKER + (2 * t) % (width - MARKER - square)
        clip[t, row : row + square, col : col + square] = 255
    if channels == 1:
        return clip[..., :1].copy()
    if channels == 4:
        return np.concatenate([clip, np.full_like(clip[..., :1], 255)], axis=-1)
    return clip


def frame_numbers(clip: np.ndarray, num_frames: int) -> np.ndarray:
    """Which frame of a ``num_frames`` ``moving_pattern`` each frame of ``clip`` ``[T, H, W, C]``
    is, read from its background level (the median pixel)."""
    medians = np.median(clip.reshape(clip.shape[0], -1, clip.shape[-1])[..., 0], axis=1)
    levels = frame_levels(num_frames).astype(np.float64)
    return np.abs(medians[:, None] - levels[None, :]).argmin(axis=1)


def write_test_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    *,
    codec: str,
    container_format: str | None = None,
    pix_fmt: str = "yuv420p",
    fps: float = FPS,
    gop: int | None = None,
    rotation: float | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    codec_options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    extra_streams: Sequence[np.ndarray] = (),
    stream_metadata: dict[str, str] | None = None,
    dropped: Sequence[int] = (),
) -> str:
    """Encodes ``frames`` ``[T, H, W, C]`` uint8 (C = 1, 3 or 4) with PyAV.

    Args:
        path: output file; the container comes from its extension unless ``container_format``.
        frames: the clip.
        codec: encoder, e.g. ``"libx264"``, ``"libvpx"``, ``"mjpeg"``, ``"ffv1"``, ``"gif"``.
        container_format: FFmpeg muxer name when the extension is not enough.
        pix_fmt: pixel format to encode in.
        fps: nominal frame rate (also the time base unless ``time_base``).
        gop: keyframe interval.
        rotation: display-matrix rotation, counter-clockwise degrees (as PyAV's
            ``set_display_rotation`` and ``VideoFrame.rotation``); an iPhone portrait clip is -90.
        pts: per-frame timestamps in ``time_base`` units (variable frame rate); default 0, 1, ...
        time_base: encoder time base for ``pts``; default ``1 / fps``.
        codec_options / container_options: passed to FFmpeg.
        extra_streams: more clips (same shape) written as further video streams.
        stream_metadata: tags on every video stream (e.g. a legacy ``rotate`` tag).
        dropped: frame numbers written as empty packets instead, as AVI capture software marks
            dropped frames (the container still counts them).

    Returns:
        ``path`` as a string.
    """
    path = os.fspath(path)
    clips = [frames, *extra_streams]
    num_frames, height, width, channels = frames.shape
    with av.open(path, "w", format=container_format, options=container_options or {}) as container:
        streams = []
        options = dict(codec_options or {})
        if codec == "ffv1":
            # FFmpeg's threaded FFV1 encoder wrote 8 wrong pixels on a slice-boundary row in about
            # half the 10-bit (yuv444p10le) files it made (PyAV 18); one thread writes exact files.
            options.setdefault("threads", "1")
        for _ in clips:
            stream = container.add_stream(
                codec, rate=Fraction(fps).limit_denominator(1000), options=options
            )
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            if gop is not None:
                stream.codec_context.gop_size = gop
            if time_base is not None:
                stream.codec_context.time_base = time_base
            if rotation is not None:
                stream.set_display_rotation(rotation)
            for key, value in (stream_metadata or {}).items():
                stream.metadata[key] = value
            streams.append(stream)
        for index in range(num_frames):
            for stream, clip in zip(streams, clips):
                if index in dropped:
                    empty = av.Packet(0)
                    empty.stream, empty.pts, empty.dts = stream, index, index
                    empty.time_base = stream.time_base
                    container.mux(empty)
                    continue
                frame = av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(clip[index]), format=_INPUT_FORMATS[channels]
                )
                frame.pts = index if pts is None else int(pts[index])
                if time_base is not None:
                    frame.time_base = time_base
                container.mux(stream.encode(frame))
        for stream in streams:
            container.mux(stream.encode(None))
    return path


def video_packets(path: str | os.PathLike) -> list[tuple[int, int]]:
    """(byte offset, size) of every packet of the first video stream, in file order."""
    with av.open(os.fspath(path)) as container:
        video = container.streams.video[0]
        return [(packet.pos, packet.size) for packet in container.demux(video) if packet.size]


def truncated_copy(src: str | os.PathLike, dst: str | os.PathLike, fraction: float = 0.5) -> str:
    """Copies ``src`` cut off halfway through the packet ``fraction`` of the way into the video
    (as a download that stopped early)."""
    packets = video_packets(src)
    offset, size = packets[int(len(packets) * fraction)]
    with open(src, "rb") as source:
        data = source.read()
    with open(dst, "wb") as out:
        out.write(data[: offset + size // 2])
    return os.fspath(dst)


def corrupted_copy(
    src: str | os.PathLike, dst: str | os.PathLike, packet_indices: Sequence[int] | None = None
) -> str:
    """Copies ``src`` with every byte of some video packets (default: the middle one) set to
    0xFF, as a disk or transfer error would."""
    packets = video_packets(src)
    with open(src, "rb") as source:
        data = bytearray(source.read())
    for index in [len(packets) // 2] if packet_indices is None else packet_indices:
        offset, size = packets[index]
        data[offset : offset + size] = b"\xff" * size
    with open(dst, "wb") as out:
        out.write(bytes(data))
    return os.fspath(dst)


# Fuzzing: small sources of several containers and seeded damage, shared by tests/test_io_fuzz.py
# and benchmarks/soak_fuzz.py.

# name -> (file name, write_test_video arguments, channels of the source)
FUZZ_SOURCES = {
    "mp4_h264": ("h264.mp4", dict(codec="libx264", gop=6), 3),
    # Index first: a cut file still opens and declares its frame count.
    "mp4_h264_faststart": (
        "h264_fs.mp4",
        dict(codec="libx264", gop=6, container_options={"movflags": "+faststart"}),
        3,
    ),
    "avi_mjpeg": ("mjpeg.avi", dict(codec="mjpeg", pix_fmt="yuvj420p"), 3),
    "webm_vp8": ("vp8.webm", dict(codec="libvpx", codec_options={"b": "1M"}, gop=6), 3),
    "mkv_h264": ("h264.mkv", dict(codec="libx264", gop=6), 3),
    "gif": ("grey.gif", dict(codec="gif", pix_fmt="gray", fps=10), 1),
}
# Damage kinds of ``damaged_copy``.
DAMAGE_KINDS = ("flip", "truncate", "zero", "header", "codec_tag")
# Bytes that name the codec, per extension; ``codec_tag`` damage replaces them with z's so that
# the container names a codec FFmpeg does not know.
CODEC_TAGS = {
    ".mp4": b"avc1",
    ".avi": b"MJPG",
    ".webm": b"V_VP8",
    ".mkv": b"V_MPEG4/ISO/AVC",
    ".gif": b"GIF89a",
}


def write_fuzz_sources(
    folder: str | os.PathLike, num_frames: int = 16, height: int = 24, width: int = 32
) -> dict[str, str]:
    """Writes one ``moving_pattern`` video per entry of ``FUZZ_SOURCES`` into ``folder``.

    Returns:
        name -> path.
    """
    paths = {}
    for name, (file_name, arguments, channels) in FUZZ_SOURCES.items():
        clip = moving_pattern(num_frames, height, width, channels=channels)
        paths[name] = write_test_video(os.path.join(folder, file_name), clip, **arguments)
    return paths


def codec_tag_copy(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Copies ``src`` with its codec tag (``CODEC_TAGS``, by extension) replaced by z's: the
    container then names a codec FFmpeg does not know (an mp4's ``avc1`` becomes ``zzzz``)."""
    tag = CODEC_TAGS[os.path.splitext(os.fspath(src))[1].lower()]
    with open(src, "rb") as source:
        data = source.read()
    with open(dst, "wb") as out:
        out.write(data.replace(tag, b"z" * len(tag)))
    return os.fspath(dst)


def damaged_copy(
    src: str | os.PathLike, dst: str | os.PathLike, rng: np.random.Generator, kind: str
) -> str:
    """Copies ``src`` with seeded damage of one of ``DAMAGE_KINDS``.

    * ``flip``: 1 to 8 random bits flipped anywhere.
    * ``truncate``: cut at a random point (as a download that stopped early).
    * ``zero``: a random range of up to an eighth of the file zeroed (as a lost disk block).
    * ``header``: 1 to 4 random bytes of the first 512 set to random values.
    * ``codec_tag``: see ``codec_tag_copy``.

    Returns:
        ``dst`` as a string.
    """
    if kind == "codec_tag":
        return codec_tag_copy(src, dst)
    with open(src, "rb") as source:
        data = bytearray(source.read())
    size = len(data)
    if kind == "flip":
        for position in rng.integers(0, size, rng.integers(1, 9)):
            data[position] ^= 1 << int(rng.integers(0, 8))
    elif kind == "truncate":
        del data[int(rng.integers(1, size)) :]
    elif kind == "zero":
        length = int(rng.integers(1, max(2, size // 8)))
        start = int(rng.integers(0, size - length))
        data[start : start + length] = bytes(length)
    elif kind == "header":
        for position in rng.integers(0, min(size, 512), rng.integers(1, 5)):
            data[position] = int(rng.integers(0, 256))
    else:
        raise ValueError(f"damaged_copy: kind must be one of {DAMAGE_KINDS}, got {kind!r}")
    with open(dst, "wb") as out:
        out.write(bytes(data))
    return os.fspath(dst)


def remuxed_copy(
    src: str | os.PathLike, dst: str | os.PathLike, *, drop: Sequence[int] = (), shift: int = 0
) -> str:
    """Copies the first video stream of ``src`` into ``dst`` packet by packet, without
    re-encoding (the container from ``dst``'s extension).

    Args:
        src: source video.
        dst: output file.
        drop: file-order indices of packets to leave out (the muxer then declares a file without
            them, as if they never were).
        shift: move every timestamp this many frames earlier; an mp4 then gets an edit list that
            trims the frames moved before 0, as a clip cut without re-encoding does.

    Returns:
        ``dst`` as a string.
    """
    with av.open(os.fspath(src)) as source, av.open(os.fspath(dst), "w") as out:
        video = source.streams.video[0]
        # (With the rate, Matroska gets its default frame duration, as the source had.)
        stream = out.add_stream_from_template(video, rate=video.average_rate)
        step = round(1 / (video.average_rate * video.time_base)) if shift else 0
        index = 0
        for packet in source.demux(video):
            if not packet.size and packet.pts is None:
                continue  # the end-of-stream flush
            if index not in drop:
                if packet.pts is not None:
                    packet.pts -= shift * step
                if packet.dts is not None:
                    packet.dts -= shift * step
                packet.stream = stream
                out.mux(packet)
            index += 1
    return os.fspath(dst)
