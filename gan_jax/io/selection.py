"""Frame selection: which frames a read request ``(start, num_frames, stride, fps)`` means,
where to seek for them, and picking them from the decoded frames by index or by time.

Frame numbering. Without ``fps``, frame ``i`` is the ``i``-th frame the decoder outputs (display
order). With ``fps``, frame ``k`` is the source frame whose timestamp is nearest ``k / fps`` seconds
after the first frame, which works for variable frame rate sources. When a read seeks into the
middle of a file, source frame numbers are recovered from timestamps, which is only exact for
constant frame rate; every seek is therefore checked (the frames after it must number contiguously
and start at or before the wanted one) and a failed check falls back to decoding from the start.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

from gan_jax.io.errors import VideoDecodeError, _SeekUnreliable
from gan_jax.io.probe import _Geometry

_TIME_EPS = 1e-6  # seconds; timestamps are rationals, so comparisons of times get this slack


@dataclasses.dataclass(frozen=True)
class _Selection:
    """Which frames a read wants: ``start + j * stride`` for ``j < num_frames`` (None = to the
    end), numbered on the source (``fps=None``) or on a timeline resampled to ``fps``."""

    start: int
    num_frames: int | None
    stride: int
    fps: float | None

    @property
    def last(self) -> int | None:
        """Number of the last wanted frame, None when reading to the end."""
        if self.num_frames is None:
            return None
        return self.start + (self.num_frames - 1) * self.stride

    def describe(self) -> str:
        """The request in words, for error messages."""
        timeline = "source frames" if self.fps is None else f"frames at {self.fps:g} fps"
        count = "all" if self.num_frames is None else str(self.num_frames)
        return f"{count} {timeline} from frame {self.start} with stride {self.stride}"


def _check_selection(start, num_frames, stride, fps) -> _Selection:
    """Validates read_video's frame-selection arguments."""
    if isinstance(start, bool) or not isinstance(start, int | np.integer) or start < 0:
        raise ValueError(f"read_video: start must be an int >= 0, got {start!r}")
    if num_frames is not None and (
        isinstance(num_frames, bool)
        or not isinstance(num_frames, int | np.integer)
        or num_frames < 1
    ):
        raise ValueError(f"read_video: num_frames must be None or an int >= 1, got {num_frames!r}")
    if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or stride < 1:
        raise ValueError(f"read_video: stride must be an int >= 1, got {stride!r}")
    if fps is not None and not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"read_video: fps must be None or a finite number > 0, got {fps!r}")
    return _Selection(
        start=int(start),
        num_frames=None if num_frames is None else int(num_frames),
        stride=int(stride),
        fps=None if fps is None else float(fps),
    )


def _seek_target(
    selection: _Selection, source_fps: float, time_base: Fraction, origin: int
) -> int | None:
    """Timestamp (stream time base) to seek back from, or None when decoding from the start is
    as good: nothing to skip, or no frame rate to place the wanted frame in time."""
    if selection.start == 0 or source_fps <= 0 or not time_base:
        return None
    if selection.fps is None:
        seconds = selection.start / source_fps
    else:
        seconds = selection.start / selection.fps
    # Land a few frames early: keyframes are found by decode timestamp, which runs ahead of
    # presentation time by the B-frame delay.
    seconds -= 3.0 / source_fps
    if seconds <= 0:
        return None
    return origin + int(seconds / time_base)


def _numbered_from_start(
    frames: Iterator[av.VideoFrame], timestamps: list[int]
) -> Iterator[tuple[av.VideoFrame, int]]:
    """Numbers frames by their decode position (exact), noting their timestamps."""
    for index, frame in enumerate(frames):
        if frame.pts is not None:
            timestamps.append(frame.pts)
        yield frame, index


def _numbered_after_seek(
    timed: Iterator[tuple[av.VideoFrame, int]],
    origin: int,
    seconds_per_tick: float,
    source_fps: float,
    start: int,
    timestamps: list[int],
) -> Iterator[tuple[av.VideoFrame, int]]:
    """Numbers frames after a seek by timestamp; raises _SeekUnreliable unless the numbers start
    at or before ``start`` and run on without gaps or repeats."""
    previous = None
    for frame, timestamp in timed:
        timestamps.append(timestamp)
        index = round((timestamp - origin) * seconds_per_tick * source_fps)
        if previous is None and index > start:
            raise _SeekUnreliable(f"seek landed at frame {index}, after frame {start}")
        if previous is not None and index != previous + 1:
            raise _SeekUnreliable(f"frame numbers from timestamps jump from {previous} to {index}")
        previous = index
        yield frame, index


def _to_rgb(frame: av.VideoFrame, geometry: _Geometry) -> np.ndarray:
    """One decoded frame -> uint8 ``[H, W, 3]`` in display orientation.

    Any pixel format (grey, alpha, yuv444, 10-bit, palette) goes through swscale to rgb24; alpha is
    dropped. A frame whose size differs from the stream's first frame is scaled to that size so a
    clip stacks.
    """
    # One swscale thread: decoding already runs on threads, and a clip-sized frame converts
    # faster alone than split across a pool (measured 0.08 vs 0.18 ms at 320x240).
    rgb = frame.to_ndarray(
        format="rgb24", width=geometry.stored_width, height=geometry.stored_height, threads=1
    )
    if geometry.rotation:
        # np.rot90 turns counter-clockwise for positive k.
        rgb = np.rot90(rgb, k=-geometry.rotation // 90)
    return rgb


def _corrupt_frame_error(path: str, where: str) -> VideoDecodeError:
    return VideoDecodeError(
        f"{path}: {where} decodes with errors (corrupt data); the file is damaged: re-download "
        "or re-encode it, or pass strict=False to accept damaged frames"
    )


def _pick_by_index(
    numbered: Iterator[tuple[av.VideoFrame, int]],
    selection: _Selection,
    geometry: _Geometry,
    path: str,
    strict: bool,
) -> tuple[list[np.ndarray], int, int, bool]:
    """Collects source frames ``start, start + stride, ...``.

    Returns:
        (frames, source frames numbered so far, corrupt frames kept, whether ``numbered`` ran
        out, i.e. the stream's end was seen).
    """
    clip: list[np.ndarray] = []
    numbered_so_far = 0
    corrupt = 0
    last = selection.last
    for frame, index in numbered:
        numbered_so_far = index + 1
        if index < selection.start or (index - selection.start) % selection.stride:
            continue
        if frame.is_corrupt:
            if strict:
                raise _corrupt_frame_error(path, f"frame {index}")
            corrupt += 1
        clip.append(_to_rgb(frame, geometry))
        if index == last:
            return clip, numbered_so_far, corrupt, False
    return clip, numbered_so_far, corrupt, True


def _pick_by_time(
    timed: Iterator[tuple[av.VideoFrame, int]],
    selection: _Selection,
    geometry: _Geometry,
    origin: int,
    seconds_per_tick: float,
    source_fps: float,
    seeked: bool,
    path: str,
    strict: bool,
    timestamps: list[int],
) -> tuple[list[np.ndarray], int, float | None, int, bool]:
    """Collects, for ``k = start, start + stride, ...``, the frame whose timestamp is nearest
    ``k / fps`` (ties go to the earlier frame). Nearest rather than "on screen at" so that
    timestamps rounded to a coarse time base (GIF centiseconds) do not shift picks by a frame.
    Times count from the first frame of the stream; the timeline ends where the last frame's
    duration does.

    Returns:
        (frames, timeline length when the stream end was seen else -1, time of the last frame
        looked at, corrupt frames kept, whether the stream's end was seen).
    """
    target_fps = selection.fps
    assert target_fps is not None
    clip: list[np.ndarray] = []
    wanted = selection.start
    remaining = selection.num_frames
    corrupt = 0
    shown = shown_time = shown_rgb = None
    step = None  # seconds between the last two frames

    def emit_shown() -> None:
        nonlocal shown_rgb, corrupt, wanted, remaining
        if shown_rgb is None:
            if shown.is_corrupt:
                if strict:
                    raise _corrupt_frame_error(path, f"the frame at t={shown_time:.3f}s")
                corrupt += 1
            shown_rgb = _to_rgb(shown, geometry)
        clip.append(shown_rgb)
        wanted += selection.stride
        if remaining is not None:
            remaining -= 1

    for frame, timestamp in timed:
        timestamps.append(timestamp)
        time = (timestamp - origin) * seconds_per_tick
        if shown is None:
            if seeked and time > selection.start / target_fps + _TIME_EPS:
                raise _SeekUnreliable(f"seek landed at t={time:.3f}s, after the wanted time")
        else:
            # Timestamps that run backwards despite reordering: keep the timeline monotone.
            time = max(time, shown_time)
            # Wanted times up to halfway to this frame are nearest the shown one (ties: earlier).
            halfway = (shown_time + time) / 2
            while remaining != 0 and wanted / target_fps <= halfway + _TIME_EPS:
                emit_shown()
            step = time - shown_time
        if remaining == 0:
            return clip, -1, shown_time, corrupt, False
        shown, shown_time, shown_rgb = frame, time, None

    if shown is None:
        # Only after a seek can nothing decode (a seek past the end); let a full pass decide.
        raise _SeekUnreliable("no frame decodes after the seek")
    if shown.duration:
        last_duration = shown.duration * seconds_per_tick
    elif step:
        last_duration = step
    else:
        last_duration = 1.0 / source_fps if source_fps > 0 else 0.0
    end_time = shown_time + last_duration
    while remaining != 0 and wanted / target_fps < end_time - _TIME_EPS:
        emit_shown()
    available = max(1, math.ceil((end_time - _TIME_EPS) * target_fps))
    return clip, available, shown_time, corrupt, True
