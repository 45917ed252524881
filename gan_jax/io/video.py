"""Reading video files into clean uint8 RGB clips ``[T, H, W, 3]``.

Everything goes through PyAV directly rather than imageio's PyAV plugin, because reading needs what
that plugin does not expose: keyframe seeking, stream selection, display-matrix rotation, per-frame
timestamps and per-packet decode errors (to tell a damaged file from a good one).

Frame numbering. Without ``fps``, frame ``i`` is the ``i``-th frame the decoder outputs (display
order). With ``fps``, frame ``k`` is the source frame whose timestamp is nearest ``k / fps`` seconds
after the first frame, which works for variable frame rate sources. When a read seeks into the
middle of a file, source frame numbers are recovered from timestamps, which is only exact for
constant frame rate; every seek is therefore checked (the frames after it must number contiguously
and start at or before the wanted one) and a failed check falls back to decoding from the start.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import heapq
import logging
import math
import os
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

_LOG = logging.getLogger(__name__)

# Bounds that keep any input, however damaged, from spinning the decode loop.
_MAX_ERRORS_IN_A_ROW = 32  # lenient mode gives up after this many undecodable packets in a row
_MAX_PACKETS_WITHOUT_FRAME = 512  # decoders hold back a few packets (B-frames, threads), not 512
# Some containers (AVI with packed B-frames, e.g. UCF-101's XviD) hand out frame timestamps in the
# wrong order although the frames themselves come out in display order; re-sorting timestamps over
# a small window restores them. The window only needs to exceed the longest run of B-frames.
_TIMESTAMP_REORDER_DEPTH = 4
_PROBE_PACKETS = 128  # packets whose timestamps probe_video reads to judge the frame rate
_TIME_EPS = 1e-6  # seconds; timestamps are rationals, so comparisons of times get this slack


class VideoDecodeError(Exception):
    """A video file could not be read; the message names the file, the cause and, where one exists,
    the fix."""


class _SeekUnreliable(Exception):
    """A seek landed somewhere frame numbers cannot be trusted; decode from the start instead."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What is known about one video stream of a file.

    Attributes:
        path: the file.
        fps: average frame rate (0.0 when the container gives none).
        declared_frames: frame count the container declares; None when it declares 0 / unknown
            (mkv, webm).
        decoded_frames: frames counted by decoding, when the call decoded the whole stream;
            otherwise None.
        duration: seconds, when the container says.
        width: display width, after rotation.
        height: display height, after rotation.
        codec: decoder name, e.g. ``"h264"``.
        rotation: 0, 90, 180 or 270: clockwise degrees the stored frames are turned to display.
        stream_index: which video stream (0 = first video stream), as passed to ``read_video``.
        variable_frame_rate: True when the frame timestamps are unevenly spaced (GIF with varying
            delays, VFR phone footage); False when even or when it could not be determined.
    """

    path: str
    fps: float
    declared_frames: int | None
    decoded_frames: int | None
    duration: float | None
    width: int
    height: int
    codec: str
    rotation: int
    stream_index: int
    variable_frame_rate: bool


@dataclasses.dataclass
class _DecodeStats:
    """What went wrong while decoding one stream."""

    packet_errors: int = 0
    first_error: str | None = None
    gave_up: str | None = None  # why lenient decoding stopped before the end, if it did


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """How stored frames map to output frames: size to convert at and quarter-turns to apply."""

    stored_width: int
    stored_height: int
    rotation: int  # clockwise degrees, multiple of 90

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) after rotation."""
        if self.rotation in (90, 270):
            return self.stored_height, self.stored_width
        return self.stored_width, self.stored_height


def _clockwise_rotation(frame: av.VideoFrame, video: av.video.stream.VideoStream) -> int:
    """Clockwise display rotation of ``frame`` in degrees: 0, 90, 180 or 270.

    PyAV does not rotate frames; it reports the display matrix as ``frame.rotation`` in
    counter-clockwise degrees. Files written by old FFmpeg builds may instead carry a ``rotate``
    tag (clockwise degrees), which is used when there is no display matrix. Odd angles are
    rounded to the nearest quarter turn.
    """
    counter_clockwise = frame.rotation
    if counter_clockwise:
        degrees = -counter_clockwise
    else:
        # Matroska hands tags back upper-cased ("ROTATE").
        tags = {key.lower(): value for key, value in video.metadata.items()}
        try:
            degrees = float(tags.get("rotate", 0))
        except ValueError:
            degrees = 0.0
    return int(round(degrees / 90.0)) % 4 * 90


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


@contextlib.contextmanager
def _open_video(
    path: str, stream: int
) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """Opens ``path`` and picks its ``stream``-th video stream; closes the file on exit."""
    if not os.path.exists(path):
        raise VideoDecodeError(
            f"{path}: file not found (relative paths resolve against {os.getcwd()}); check the path"
        )
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: not a regular file; pass the path of a video file")
    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoDecodeError(
            f"{path}: FFmpeg cannot open it as a video ({err}); the file is not a video or is "
            "damaged beyond its header"
        ) from err
    with container:
        videos = container.streams.video
        if not videos:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise VideoDecodeError(
                f"{path}: has no video stream (streams: {kinds}); it is not a video file"
            )
        if not 0 <= stream < len(videos):
            raise VideoDecodeError(
                f"{path}: stream={stream} does not exist; the file has {len(videos)} video "
                f"stream(s), pass stream=0..{len(videos) - 1}"
            )
        video = videos[stream]
        # Frame + slice threads: several times faster on HD footage, same frames out.
        video.codec_context.thread_type = "AUTO"
        yield container, video


def _packet_time(packet: av.Packet, video: av.video.stream.VideoStream) -> str:
    """Human-readable position of ``packet``, for error messages."""
    timestamp = packet.pts if packet.pts is not None else packet.dts
    if timestamp is None or video.time_base is None:
        return "an unknown position"
    return f"t={float(timestamp * video.time_base):.3f}s"


def _decode(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    path: str,
    strict: bool,
    stats: _DecodeStats,
) -> Iterator[av.VideoFrame]:
    """Decodes ``video`` from the container's current position, in display order.

    Strict mode raises on the first packet the decoder rejects. Lenient mode skips it, counts it in
    ``stats`` and stops (setting ``stats.gave_up``) after ``_MAX_ERRORS_IN_A_ROW`` rejections in a
    row. Either way ``_MAX_PACKETS_WITHOUT_FRAME`` packets without a frame ends the loop, so no
    input can keep it running without progress.
    """
    errors_in_a_row = 0
    packets_without_frame = 0
    for packet in container.demux(video):
        try:
            frames = video.decode(packet)
        except av.FFmpegError as err:
            where = _packet_time(packet, video)
            stats.packet_errors += 1
            stats.first_error = stats.first_error or f"{err} at {where}"
            if strict:
                raise VideoDecodeError(
                    f"{path}: corrupt video data at {where} ({err}); the file is damaged: "
                    "re-download or re-encode it, or pass strict=False to keep the frames that "
                    "decode"
                ) from err
            errors_in_a_row += 1
            if errors_in_a_row >= _MAX_ERRORS_IN_A_ROW:
                stats.gave_up = f"{errors_in_a_row} undecodable packets in a row at {where}"
                return
            continue
        errors_in_a_row = 0
        if not frames:
            packets_without_frame += 1
            if packets_without_frame >= _MAX_PACKETS_WITHOUT_FRAME:
                reason = f"{packets_without_frame} packets in a row gave no frame"
                if strict:
                    raise VideoDecodeError(
                        f"{path}: {reason}; the stream is damaged or not decodable: re-encode it"
                    )
                stats.gave_up = reason
                return
            continue
        packets_without_frame = 0
        yield from frames


def _with_timestamps(
    frames: Iterator[av.VideoFrame], default_step: int
) -> Iterator[tuple[av.VideoFrame, int]]:
    """Pairs each frame with its presentation timestamp (stream time base), increasing.

    Timestamps are re-sorted over ``_TIMESTAMP_REORDER_DEPTH`` frames (see the constant); a frame
    without one gets the previous one plus ``default_step``.
    """
    pending: collections.deque[av.VideoFrame] = collections.deque()
    timestamps: list[int] = []
    latest: int | None = None
    for frame in frames:
        if frame.pts is not None:
            timestamp = frame.pts
        else:
            timestamp = 0 if latest is None else latest + default_step
        latest = timestamp if latest is None else max(latest, timestamp)
        heapq.heappush(timestamps, timestamp)
        pending.append(frame)
        if len(pending) > _TIMESTAMP_REORDER_DEPTH:
            yield pending.popleft(), heapq.heappop(timestamps)
    while pending:
        yield pending.popleft(), heapq.heappop(timestamps)


def _is_variable_rate(timestamps: list[int]) -> bool | None:
    """Whether sorted-able integer ``timestamps`` are unevenly spaced; None with fewer than 3.

    Rounding to the time base makes even spacing jitter by one tick (24 fps in milliseconds is
    41/42 ms), so spacing counts as uneven only when it varies by more than a tick and by more
    than 10%.
    """
    if len(timestamps) < 3:
        return None
    steps = np.diff(np.sort(np.asarray(timestamps, dtype=np.int64)))
    smallest, largest = int(steps.min()), int(steps.max())
    return largest - smallest > 1 and largest > 1.1 * smallest


def _indexed_variable_rate(video: av.video.stream.VideoStream) -> bool | None:
    """Frame-rate evenness from the container's sample index (mp4, mov, avi), when it lists every
    frame; None otherwise."""
    entries = video.index_entries
    if video.frames < 3 or len(entries) != video.frames:
        return None
    return _is_variable_rate([entry.timestamp for entry in entries])


def _average_fps(video: av.video.stream.VideoStream) -> float:
    """Average frame rate of ``video``; 0.0 when the container gives none."""
    if video.codec_context.name == "gif" and video.frames and video.duration and video.time_base:
        # FFmpeg's GIF demuxer estimates the rate from the first few delays only (50 fps for a
        # GIF that averages 44); frames over duration is the true average.
        return video.frames / float(video.duration * video.time_base)
    rate = video.average_rate or video.guessed_rate or video.base_rate
    return float(rate) if rate else 0.0


def _duration(container: av.container.InputContainer, video: av.video.stream.VideoStream):
    """Stream duration in seconds, else the container's, else None."""
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _make_info(
    path: str,
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    stream: int,
    geometry: _Geometry,
    *,
    decoded_frames: int | None,
    variable_frame_rate: bool | None,
) -> VideoInfo:
    width, height = geometry.display_size
    return VideoInfo(
        path=path,
        fps=_average_fps(video),
        declared_frames=video.frames or None,
        decoded_frames=decoded_frames,
        duration=_duration(container, video),
        width=width,
        height=height,
        codec=video.codec_context.name,
        rotation=geometry.rotation,
        stream_index=stream,
        variable_frame_rate=bool(variable_frame_rate),
    )


def _first_frame(frames: Iterator[av.VideoFrame], path: str, stats: _DecodeStats) -> av.VideoFrame:
    """The first frame out of ``frames``; VideoDecodeError when nothing decodes."""
    first = next(frames, None)
    if first is None:
        cause = stats.first_error or stats.gave_up or "the stream holds no frames"
        raise VideoDecodeError(
            f"{path}: no frame decodes ({cause}); the file is empty or damaged: re-encode it"
        )
    return first


def probe_video(path: str | os.PathLike, *, stream: int = 0) -> VideoInfo:
    """Reads what a video stream is without decoding it all.

    Reads container metadata, decodes the first frame only (PyAV exposes the display rotation and
    the true frame size on decoded frames, not on streams) and reads the timestamps of up to 128
    packets, without decoding them, to judge whether the frame rate varies when the container has
    no full sample index.

    Args:
        path: video file.
        stream: which video stream, 0 = the first.

    Returns:
        VideoInfo with ``decoded_frames=None``.

    Raises:
        VideoDecodeError: missing file, not a video, no such stream, or the first frame does not
            decode.
    """
    path = os.fspath(path)
    with _open_video(path, stream) as (container, video):
        variable_rate = _indexed_variable_rate(video)
        first, timestamps, window_cut = _probe_packets(
            container, video, path, want_timestamps=variable_rate is None
        )
        if variable_rate is None:
            if window_cut:
                # Decode-order timestamps near the cut may miss neighbours still to come.
                timestamps = sorted(timestamps)[:-_TIMESTAMP_REORDER_DEPTH]
            variable_rate = _is_variable_rate(timestamps)
        geometry = _Geometry(first.width, first.height, _clockwise_rotation(first, video))
        return _make_info(
            path,
            container,
            video,
            stream,
            geometry,
            decoded_frames=None,
            variable_frame_rate=variable_rate,
        )


def _probe_packets(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    path: str,
    *,
    want_timestamps: bool,
) -> tuple[av.VideoFrame, list[int], bool]:
    """Decodes the first frame and collects packet timestamps of the first ``_PROBE_PACKETS``.

    Returns:
        (first frame, packet timestamps in decode order, whether the window stopped before the
        end of the stream).
    """
    first = None
    first_error = None
    timestamps: list[int] = []
    packets_read = 0
    for packet in container.demux(video):
        packets_read += 1
        if packet.size and packet.pts is not None:
            timestamps.append(packet.pts)
        if first is None:
            # A damaged packet here is read_video's business (strict or not); probing goes on.
            try:
                frames = video.decode(packet)
            except av.FFmpegError as err:
                first_error = first_error or f"{err} at {_packet_time(packet, video)}"
                frames = []
            if frames:
                first = frames[0]
            elif packets_read >= _MAX_PACKETS_WITHOUT_FRAME:
                break
        if first is not None and (not want_timestamps or len(timestamps) >= _PROBE_PACKETS):
            return first, timestamps, True
    if first is None:
        cause = f"first error: {first_error}" if first_error else "the stream holds no frames"
        raise VideoDecodeError(
            f"{path}: no frame decodes from {packets_read} packets ({cause}); the file is empty "
            "or damaged: re-encode it"
        )
    return first, timestamps, False


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


@dataclasses.dataclass
class _PassResult:
    """What one decoding pass over a file produced."""

    frames: list[np.ndarray]
    complete: bool  # every wanted frame was found
    available: int  # frames on the requested timeline, when the pass reached the end
    source_frames: int  # source frames up to the end (counted, or derived after a seek)
    reached_end: bool  # the decoder ran to the end of the stream (or lenient mode gave up)
    corrupt_frames: int
    stats: _DecodeStats
    end_time: float | None  # stream time (s) where the decoded frames end, if the end was reached
    declared_end: float | None  # where the container says the video ends (s), if it says


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


def _read_pass(
    path: str, selection: _Selection, stream: int, strict: bool, allow_seek: bool
) -> tuple[_PassResult, VideoInfo]:
    """One decoding pass: open, decode the first frame, maybe seek, collect the wanted frames."""
    with _open_video(path, stream) as (container, video):
        stats = _DecodeStats()
        frames = _decode(container, video, path, strict, stats)
        first = _first_frame(frames, path, stats)
        geometry = _Geometry(first.width, first.height, _clockwise_rotation(first, video))
        source_fps = _average_fps(video)
        time_base = video.time_base or Fraction(1, 1)
        seconds_per_tick = float(time_base)
        origin = first.pts if first.pts is not None else (video.start_time or 0)
        default_step = max(1, round(1.0 / (source_fps * seconds_per_tick))) if source_fps else 1

        target = _seek_target(selection, source_fps, time_base, origin) if allow_seek else None
        if target is not None:
            frames.close()
            try:
                container.seek(target, stream=video, backward=True)
            except av.FFmpegError as err:
                raise _SeekUnreliable(f"seek failed: {err}") from err
            frames = _decode(container, video, path, strict, stats)
        else:
            frames = _chain_first(first, frames)
        seeked = target is not None

        timestamps: list[int] = []
        if selection.fps is None:
            if seeked:
                numbered = _numbered_after_seek(
                    _with_timestamps(frames, default_step),
                    origin,
                    seconds_per_tick,
                    source_fps,
                    selection.start,
                    timestamps,
                )
            else:
                numbered = _numbered_from_start(frames, timestamps)
            clip, source_frames, corrupt, exhausted = _pick_by_index(
                numbered, selection, geometry, path, strict
            )
            available = source_frames
        else:
            clip, available, last_time, corrupt, exhausted = _pick_by_time(
                _with_timestamps(frames, default_step),
                selection,
                geometry,
                origin,
                seconds_per_tick,
                source_fps,
                seeked,
                path,
                strict,
                timestamps,
            )
            if seeked:
                source_frames = round(last_time * source_fps) + 1 if source_fps else 0
            else:
                source_frames = len(timestamps)
        # The decoder may have run ahead to the end (timestamp reordering reads a few frames
        # ahead); what counts is whether the picker saw every frame.
        reached_end = exhausted
        complete = selection.num_frames is not None and len(clip) == selection.num_frames
        if seeked and reached_end and selection.fps is not None and strict:
            declared = video.frames or 0
            if source_frames < declared:
                # The count after a seek is estimated from time; count exactly before accusing
                # the file of being truncated.
                raise _SeekUnreliable("possible truncation after a seek")

        end_time = None
        if reached_end and timestamps:
            frame_seconds = 1.0 / source_fps if source_fps > 0 else 0.0
            end_time = max(timestamps) * seconds_per_tick + frame_seconds
        declared_end = _declared_end(container, video)

        whole_stream = reached_end and not seeked
        variable_rate = None
        if whole_stream:
            variable_rate = _is_variable_rate(timestamps)
        if variable_rate is None:
            variable_rate = _indexed_variable_rate(video)
        if variable_rate is None:
            variable_rate = _is_variable_rate(timestamps)
        info = _make_info(
            path,
            container,
            video,
            stream,
            geometry,
            decoded_frames=source_frames if whole_stream else None,
            variable_frame_rate=variable_rate,
        )
        result = _PassResult(
            frames=clip,
            complete=complete,
            available=available,
            source_frames=source_frames,
            reached_end=reached_end,
            corrupt_frames=corrupt,
            stats=stats,
            end_time=end_time,
            declared_end=declared_end,
        )
        return result, info


def _declared_end(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> float | None:
    """Stream time (s) where the container says the video ends: the stream's own start +
    duration when it has them, else the whole file's (which may include longer audio)."""
    if video.duration is not None and video.time_base is not None:
        return float(((video.start_time or 0) + video.duration) * video.time_base)
    if container.duration is not None:
        return ((container.start_time or 0) + container.duration) / av.time_base
    return None


def _missing_frames(result: _PassResult, info: VideoInfo) -> tuple[int, str]:
    """How many frames a pass that reached the end of the stream did not get, and how that was
    judged ("" when nothing is missing or it cannot be judged)."""
    if not result.reached_end:
        return 0, ""
    frame_seconds = 1.0 / info.fps if info.fps > 0 else 0.0
    shortfall = None
    if result.end_time is not None and result.declared_end is not None:
        shortfall = result.declared_end - result.end_time
    declared = info.declared_frames
    if declared is not None:
        lost = declared - result.source_frames
        if lost <= 0:
            return 0, ""
        stats = result.stats
        undamaged = not stats.packet_errors and not result.corrupt_frames and not stats.gave_up
        if undamaged and shortfall is not None and shortfall <= 1.5 * frame_seconds + _TIME_EPS:
            # The frames run to the declared end without a decode error: the missing ones were
            # never meant to show (empty "dropped frame" chunks of AVI captures, frames an edit
            # list trims off a cut phone clip), not lost.
            return 0, ""
        return lost, f"the container declares {declared} frames, {result.source_frames} decode"
    # mkv / webm declare no frame count, and damage there makes the demuxer stop quietly; the
    # declared duration is the remaining witness. It may be the whole file's, and audio may
    # outlast video by a little, hence the slack (half a second, 5% of it, or two frames).
    if shortfall is None:
        return 0, ""
    if shortfall <= max(0.5, 0.05 * result.declared_end, 2 * frame_seconds):
        return 0, ""
    lost = max(1, round(shortfall * info.fps)) if info.fps > 0 else 1
    return lost, (
        f"the decoded frames end at {result.end_time:.2f}s but the container says the video runs "
        f"to {result.declared_end:.2f}s (about {lost} frames)"
    )


def _report_damage(path: str, result: _PassResult, info: VideoInfo, strict: bool) -> None:
    """Strict: raises when the pass lost frames to damage. Lenient: logs one warning saying what
    was lost."""
    lost, how = _missing_frames(result, info)
    stats = result.stats
    if strict and lost:
        raise VideoDecodeError(
            f"{path}: {how}; the file is truncated or damaged: re-download or re-encode it, or "
            "pass strict=False to keep the frames that decode"
        )
    if strict or not (lost or stats.packet_errors or result.corrupt_frames or stats.gave_up):
        return
    details = [f"{lost} frame(s) lost ({how})" if lost else "no whole frame lost"]
    if stats.packet_errors:
        details.append(
            f"{stats.packet_errors} corrupt packet(s) skipped, first: {stats.first_error}"
        )
    if result.corrupt_frames:
        details.append(f"{result.corrupt_frames} frame(s) kept that decoded with errors")
    if stats.gave_up:
        details.append(f"stopped early: {stats.gave_up}")
    _LOG.warning(
        "%s: damaged video: %s; returning the %d frame(s) that decode",
        path,
        "; ".join(details),
        len(result.frames),
    )


def _chain_first(first: av.VideoFrame, rest: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    """``first`` followed by ``rest``."""
    yield first
    yield from rest


def read_video(
    path: str | os.PathLike,
    *,
    start: int = 0,
    num_frames: int | None = None,
    stride: int = 1,
    fps: float | None = None,
    stream: int = 0,
    strict: bool = True,
) -> tuple[np.ndarray, VideoInfo]:
    """Decodes frames of a video file as uint8 RGB in display orientation.

    Frames ``start, start + stride, ...`` (``num_frames`` of them, or all to the end) are taken
    from the source, or, when ``fps`` is given, from the timeline resampled to ``fps`` (frame
    ``k`` = the source frame with the timestamp nearest ``k / fps`` seconds after the first frame;
    variable frame rate is handled). A read that starts later than the first frame seeks to the
    keyframe before it, so a short clip from a long file decodes about one keyframe interval plus
    the clip, not the whole file.

    Any pixel format (grey, alpha, yuv444, 10-bit, palette; odd sizes) comes out as ``[.., 3]``
    RGB; alpha is dropped. Rotation metadata (display matrix) is applied for 90/180/270 degrees.

    Args:
        path: video file (mp4, mov, avi, mkv, webm, gif, ... whatever FFmpeg reads).
        start: first frame to take.
        num_frames: how many frames; None = every frame from ``start`` to the end.
        stride: take every ``stride``-th frame.
        fps: resample the timeline to this frame rate before selecting; None = source frames.
        stream: which video stream, 0 = the first.
        strict: True: a damaged file raises: a packet the decoder rejects, a frame flagged
            corrupt, or (when the read runs to the end) fewer frames than the container declares
            or, for mkv/webm which declare none, frames ending well before the declared
            duration. Frames declared but never meant to show (empty "dropped frame" chunks in
            AVI, frames an edit list trims) are not damage: the decoded frames still reach the
            declared end. Damage past the last wanted frame goes unseen: nothing is decoded
            there. False: returns the frames that decode and logs one warning saying how many
            were lost. Both raise when no frame decodes.

    Returns:
        (frames uint8 ``[T, H, W, 3]``, VideoInfo). ``info.decoded_frames`` is set when the call
        decoded the whole stream from the start.

    Raises:
        VideoDecodeError: missing file, not a video, no such stream, damage (see ``strict``), or
            fewer frames than asked for (the message says how many exist; nothing is padded).
        ValueError: a selection argument out of range.
    """
    path = os.fspath(path)
    selection = _check_selection(start, num_frames, stride, fps)
    try:
        result, info = _read_pass(path, selection, stream, strict, allow_seek=True)
    except _SeekUnreliable:
        result, info = _read_pass(path, selection, stream, strict, allow_seek=False)

    _report_damage(path, result, info, strict)
    if selection.num_frames is not None and not result.complete:
        raise VideoDecodeError(
            f"{path}: asked for {selection.describe()} (last frame {selection.last}), but the "
            f"video has only {result.available} "
            f"{'frames' if selection.fps is None else f'frames at {selection.fps:g} fps'}; "
            "ask for fewer frames or a smaller start/stride"
        )
    if not result.frames:
        raise VideoDecodeError(
            f"{path}: asked for {selection.describe()}, but the video has only "
            f"{result.available} frames; pass a start below {result.available}"
        )
    return np.stack(result.frames), info
