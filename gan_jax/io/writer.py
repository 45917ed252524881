"""Writing clips to .mp4 / .webm / .gif, and the one float -> uint8 conversion used everywhere.

Encoding goes through PyAV directly: imageio's PyAV plugin takes no encoder options, and these
files need them (libx264/VP9 quality settings, GIF palettes built from the clip, GIF delays in
whole centiseconds that still average to the asked frame rate).
"""

from __future__ import annotations

import math
import os
import pathlib
from fractions import Fraction

import av
import numpy as np

from gan_jax.io.atomic import atomic_write

# Quality settings. At these, a write-then-read round trip of natural-looking content is within
# a few grey levels; what error is left comes mostly from yuv420p's halved chroma resolution.
_H264_OPTIONS = {"crf": "15", "preset": "medium"}
_VP9_OPTIONS = {"crf": "20", "b": "0", "cpu-used": "4", "row-mt": "1"}
_GIF_TICKS_PER_SECOND = 100  # GIF frame delays are whole centiseconds


def to_uint8(frames) -> np.ndarray:
    """The one conversion from model output to pixels.

    uint8 passes through unchanged. Floats are taken to be in [-1, 1] and mapped by
    ``round((x + 1) * 127.5)``, clipped to [0, 255] (so out-of-range values saturate).

    Args:
        frames: array of any shape (numpy, jax, or anything ``np.asarray`` takes), uint8 or float
            (float16/32/64, bfloat16).

    Returns:
        uint8 array of the same shape.

    Raises:
        ValueError: any other dtype (ints, bool, complex), or NaN/inf values.
    """
    array = np.asarray(frames)
    if array.dtype == np.uint8:
        return array
    # bfloat16 / float8 (from jax, via ml_dtypes) are not numpy floating subtypes.
    is_float = np.issubdtype(array.dtype, np.floating) or array.dtype.name.startswith(
        ("bfloat16", "float8")
    )
    if not is_float:
        raise ValueError(
            f"to_uint8: frames have dtype {array.dtype}; pass uint8 pixels or floats in [-1, 1]"
        )
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ValueError(
            f"to_uint8: {bad} of {values.size} values are NaN or inf (shape {array.shape}); "
            "the model output diverged or was not initialised"
        )
    return np.clip(np.rint((values + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _rgb_clip(frames, what: str) -> np.ndarray:
    """``frames`` -> uint8 ``[T, H, W, 3]``; grey (C=1) is repeated to RGB."""
    clip = to_uint8(frames)
    if clip.ndim != 4 or clip.shape[-1] not in (1, 3) or 0 in clip.shape:
        raise ValueError(
            f"{what}: frames must be [T, H, W, C] with C in {{1, 3}} and no empty axis, got "
            f"shape {clip.shape}; add a time axis for a single image ([1, H, W, C])"
        )
    if clip.shape[-1] == 1:
        clip = np.repeat(clip, 3, axis=-1)
    return clip


def _pad_to_even(clip: np.ndarray) -> np.ndarray:
    """Pads ``[T, H, W, 3]`` by repeating the last row/column so H and W are even."""
    _, height, width, _ = clip.shape
    if height % 2 == 0 and width % 2 == 0:
        return clip
    return np.pad(clip, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _encode_yuv(
    container: av.container.OutputContainer,
    clip: np.ndarray,
    fps: float,
    codec: str,
    options: dict[str, str],
) -> None:
    """Encodes ``clip`` as yuv420p at a constant ``fps`` into ``container``."""
    _, height, width, _ = clip.shape
    rate = Fraction(fps).limit_denominator(1001 * 1000)
    stream = container.add_stream(codec, rate=rate, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for index, image in enumerate(clip):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = index
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _gif_palette_frames(clip: np.ndarray, ticks: list[int]) -> list[av.VideoFrame]:
    """``clip`` as pal8 frames sharing one 256-colour palette made from the whole clip.

    FFmpeg's palettegen/paletteuse pair: a fixed palette (what plain pixel-format conversion
    gives) roughly doubles the error on photographic or generated content.
    """
    _, height, width, _ = clip.shape
    time_base = Fraction(1, _GIF_TICKS_PER_SECOND)
    graph = av.filter.Graph()
    source = graph.add_buffer(width=width, height=height, format="rgb24", time_base=time_base)
    split = graph.add("split")
    palette = graph.add("palettegen", "stats_mode=full:reserve_transparent=0")
    apply_palette = graph.add("paletteuse", "dither=bayer:bayer_scale=5")
    sink = graph.add("buffersink")
    source.link_to(split)
    split.link_to(palette, 0, 0)
    split.link_to(apply_palette, 1, 0)
    palette.link_to(apply_palette, 0, 1)
    apply_palette.link_to(sink)
    graph.configure()
    for image, tick in zip(clip, ticks):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = tick, time_base
        graph.push(frame)
    graph.push(None)
    # palettegen emits its palette only at end of input, so every frame is pulled after that.
    out: list[av.VideoFrame] = []
    for _ in range(len(clip)):
        out.append(graph.pull())
    return out


def _encode_gif(container: av.container.OutputContainer, clip: np.ndarray, fps: float) -> None:
    """Encodes ``clip`` as an endlessly looping GIF at ``fps`` (on average: frame ``i`` starts at
    the centisecond nearest ``i / fps``)."""
    num_frames, height, width, _ = clip.shape
    starts = [round(i * _GIF_TICKS_PER_SECOND / fps) for i in range(num_frames + 1)]
    if any(later <= earlier for earlier, later in zip(starts, starts[1:])):
        raise ValueError(
            f"write_video: fps={fps:g} is too high for GIF, whose frame delays are whole "
            f"centiseconds; use fps <= {_GIF_TICKS_PER_SECOND} (browsers slow anything over 50)"
        )
    # Encoder ticks = GIF ticks, so frame timestamps are centiseconds (the rate is nominal).
    stream = container.add_stream("gif", rate=_GIF_TICKS_PER_SECOND)
    stream.width, stream.height, stream.pix_fmt = width, height, "pal8"
    stream.time_base = Fraction(1, _GIF_TICKS_PER_SECOND)
    frames = _gif_palette_frames(clip, starts[:-1])
    packets = [packet for frame in frames for packet in stream.encode(frame)]
    packets += stream.encode(None)
    # The GIF muxer takes each frame's delay from its packet duration, which the encoder leaves 0.
    for index, packet in enumerate(packets):
        packet.duration = starts[index + 1] - starts[index]
        container.mux(packet)


_FORMATS = {".mp4": "mp4", ".webm": "webm", ".gif": "gif"}


def _encode_file(target: pathlib.Path, extension: str, clip: np.ndarray, fps: float) -> None:
    """Encodes ``clip`` into the file ``target`` in the format of ``extension``.

    The container format is passed explicitly, so ``target``'s own extension does not matter
    (``atomic_write`` hands over a temporary name).
    """
    with av.open(str(target), "w", format=_FORMATS[extension]) as container:
        if extension == ".mp4":
            _encode_yuv(container, _pad_to_even(clip), fps, "libx264", _H264_OPTIONS)
        elif extension == ".webm":
            _encode_yuv(container, clip, fps, "libvpx-vp9", _VP9_OPTIONS)
        else:
            _encode_gif(container, clip, fps)


def write_video(path: str | os.PathLike, frames, fps: float = 8.0) -> None:
    """Writes a clip to ``.mp4``, ``.webm`` or ``.gif``, chosen by the file extension.

    - ``.mp4``: H.264 (libx264, crf 15), yuv420p. yuv420p needs even sizes, so an odd width or
      height is padded to even by repeating the last column / row: reading back gives the padded
      size.
    - ``.webm``: VP9 (libvpx-vp9, constant quality crf 20), yuv420p; any size.
    - ``.gif``: one 256-colour palette built from the whole clip, loops forever. GIF delays are
      whole centiseconds, so frame ``i`` starts at the centisecond nearest ``i / fps``.

    The file is written through ``atomic_write`` (a temporary name renamed into place), so an
    interrupted write never leaves a half-written video at ``path``.

    Args:
        path: output file; its directory must exist.
        frames: ``[T, H, W, C]``, C in {1, 3}; uint8, or float in [-1, 1] converted by
            ``to_uint8`` (``round((x + 1) * 127.5)``, clipped).
        fps: frames per second, > 0.

    Raises:
        ValueError: unsupported extension, bad shape or dtype, or fps out of range.
        FileNotFoundError: the directory of ``path`` does not exist.
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in _FORMATS:
        raise ValueError(
            f"write_video: {path}: unsupported extension {extension!r}; use one of "
            f"{', '.join(_FORMATS)}"
        )
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps):
        raise ValueError(f"write_video: {path}: fps must be a finite number, got {fps!r}")
    if fps <= 0:
        raise ValueError(f"write_video: {path}: fps must be > 0, got {fps!r}")
    clip = _rgb_clip(frames, f"write_video: {path}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"write_video: {path}: directory {directory} does not exist; create it first"
        )

    atomic_write(path, lambda tmp: _encode_file(tmp, extension, clip, fps))
