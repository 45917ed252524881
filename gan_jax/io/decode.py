"""Decoding: ``read_video``, the decode passes over a file, and the damage checks against what
the container declares.

Reads video files into clean uint8 RGB clips ``[T, H, W, 3]``. Everything goes through PyAV
directly rather than imageio's PyAV plugin, because reading needs what that plugin does not
expose: keyframe seeking, stream selection, display-matrix rotation, per-frame timestamps and
per-packet decode errors (to tell a damaged file from a good one).
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import logging
import os
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

from gan_jax.io.errors import VideoDecodeError, _SeekUnreliable
from gan_jax.io.probe import (
    _MAX_PACKETS_WITHOUT_FRAME,
    _TIMESTAMP_REORDER_DEPTH,
    VideoInfo,
    _average_fps,
    _clockwise_rotation,
    _declared_end,
    _Geometry,
    _indexed_variable_rate,
    _is_variable_rate,
    _make_info,
    _open_video,
    _packet_time,
)
from gan_jax.io.selection import (
    _TIME_EPS,
    _check_selection,
    _numbered_after_seek,
    _numbered_from_start,
    _pick_by_index,
    _pick_by_time,
    _seek_target,
    _Selection,
)

logger = logging.getLogger(__name__)

# Bounds that keep any input, however damaged, from spinning the decode loop.
_MAX_ERRORS_IN_A_ROW = 32  # lenient mode gives up after this many undecodable packets in a row


@dataclasses.dataclass
class _DecodeStats:
    """What went wrong while decoding one stream."""

    packet_errors: int = 0
    first_error: str | None = None
    gave_up: str | None = None  # why lenient decoding stopped before the end, if it did


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


def _first_frame(frames: Iterator[av.VideoFrame], path: str, stats: _DecodeStats) -> av.VideoFrame:
    """The first frame out of ``frames``; VideoDecodeError when nothing decodes."""
    first = next(frames, None)
    if first is None:
        cause = stats.first_error or stats.gave_up or "the stream holds no frames"
        raise VideoDecodeError(
            f"{path}: no frame decodes ({cause}); the file is empty or damaged: re-encode it"
        )
    return first


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
    logger.warning(
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
