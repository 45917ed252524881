"""Decoding: ``read_video``, the decode passes over a file, and the damage checks against what
the container declares.

Reads video files into clean uint8 RGB clips ``[T, H, W, 3]``. Everything goes through PyAV
directly rather than imageio's PyAV plugin, because reading needs what that plugin does not
expose: keyframe seeking, stream selection, display-matrix rotation, per-frame timestamps and
per-packet decode errors (to tell a damaged file from a good one). Whatever FFmpeg or PyAV raise
on a file comes out as a one-line ``VideoDecodeError`` naming it (``errors._reading``).
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

from gan_jax.io.errors import VideoDecodeError, _reading, _SeekUnreliable
from gan_jax.io.probe import (
    _MAX_PACKETS_WITHOUT_FRAME,
    _TIMESTAMP_REORDER_DEPTH,
    VideoInfo,
    _average_fps,
    _clockwise_rotation,
    _declared_end,
    _Geometry,
    _gif_images,
    _indexed_variable_rate,
    _is_variable_rate,
    _make_info,
    _matroska_cut,
    _open_video,
    _packet_time,
)
from gan_jax.io.selection import (
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
# How many declared frames may be missing before a read that ran to the end counts as damaged.
# Declared counts are exact once the frames meant to give no picture are accounted for (empty
# AVI "dropped frame" chunks, packets an edit list trims): every good file measured (the shared
# videos; fixtures of 9 codec/container pairs at 8 to 60 fps, VFR, edit lists, dropped frames,
# longer audio) decodes exactly its declared count, so one lost frame is damage.
_COUNT_SLACK_FRAMES = 0
# The same, in frame periods, for files that declare only a duration (mkv, webm): how far the
# decoded frames may fall short of it, plus _END_SLACK_SECONDS for timestamps rounded to the
# time base (milliseconds in Matroska). Good files measured fall short by at most 0.02 frames
# (ms rounding at 60 fps); one lost frame falls short by a whole one.
_END_SLACK_FRAMES = 0.5
_END_SLACK_SECONDS = 0.002


class _Timeline:
    """Follows the decoded frames' ``(pts, duration)`` in stream ticks: where they end, and how
    much time lies uncovered between them.

    When each frame's duration is its own, frames tile the timeline: each starts where the one
    before it ends, to a tick or so of rounding, and time left uncovered for a frame or more
    (``gaps``) is frames gone missing. Durations are not always a frame's own: Matroska may give
    every frame its track's default duration, and an mp4 with B-frames and a variable rate pairs
    decode-order durations with display-order frames. Any step that neither tiles nor skips a
    whole frame (``irregular``) shows that, and then the gaps say nothing. Timestamps are
    re-sorted over ``_TIMESTAMP_REORDER_DEPTH`` frames first, as in ``_with_timestamps``.
    """

    def __init__(self) -> None:
        self.end: int | None = None  # latest pts + duration of a frame with a duration
        self.gaps = 0  # ticks uncovered between frames, where a frame or more is
        self.irregular = 0  # steps that neither tile nor leave a whole frame uncovered
        self._pending: list[tuple[int, int]] = []
        self._previous: tuple[int, int] | None = None

    def add(self, pts: int | None, duration: int) -> None:
        """Notes one decoded frame (``pts`` None: not placed on the timeline)."""
        if pts is None:
            return
        heapq.heappush(self._pending, (pts, duration))
        if len(self._pending) > _TIMESTAMP_REORDER_DEPTH:
            self._take(heapq.heappop(self._pending))

    def finish(self) -> None:
        """Takes in the frames still held for re-sorting."""
        while self._pending:
            self._take(heapq.heappop(self._pending))

    def _take(self, frame: tuple[int, int]) -> None:
        pts, duration = frame
        if self._previous is not None:
            previous_pts, previous_duration = self._previous
            gap = pts - (previous_pts + previous_duration)
            # Durations and timestamps rounded to the time base (24 fps in milliseconds: 41 ms
            # frames 41 or 42 ms apart) differ by a tick or so.
            tolerance = previous_duration // 8 + 1
            if not previous_duration or abs(gap) <= tolerance:
                pass
            elif gap >= previous_duration - tolerance:
                self.gaps += gap
            else:
                self.irregular += 1
        self._previous = frame
        if duration:
            self.end = pts + duration if self.end is None else max(self.end, pts + duration)


@dataclasses.dataclass
class _DecodeStats:
    """What went wrong while decoding one stream, and what the demuxer handed out."""

    packet_errors: int = 0
    first_error: str | None = None
    gave_up: str | None = None  # why lenient decoding stopped before the end, if it did
    packets: int = 0  # video packets demuxed, the end-of-stream flush aside
    empty_packets: int = 0  # of those, packets with no data: meant to give no picture
    discarded: list[int | None] = dataclasses.field(default_factory=list)  # discard-flagged: pts
    timeline: _Timeline = dataclasses.field(default_factory=_Timeline)
    others_end: float | None = None  # latest end of the other streams' packets (s), if demuxed


def _decode(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    path: str,
    strict: bool,
    stats: _DecodeStats,
    others: tuple[av.stream.Stream, ...] = (),
) -> Iterator[av.VideoFrame]:
    """Decodes ``video`` from the container's current position, in display order.

    Strict mode raises on the first packet the decoder rejects. Lenient mode skips it, counts it in
    ``stats`` and stops (setting ``stats.gave_up``) after ``_MAX_ERRORS_IN_A_ROW`` rejections in a
    row. Either way ``_MAX_PACKETS_WITHOUT_FRAME`` packets without a frame ends the loop, so no
    input can keep it running without progress. Packets of ``others`` are demuxed too, only to
    note where they end (``stats.others_end``).
    """
    try:
        yield from _decode_packets(container, video, path, strict, stats, others)
    finally:
        stats.timeline.finish()


def _decode_packets(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    path: str,
    strict: bool,
    stats: _DecodeStats,
    others: tuple[av.stream.Stream, ...],
) -> Iterator[av.VideoFrame]:
    """The loop of ``_decode``."""
    errors_in_a_row = 0
    packets_without_frame = 0
    for packet in container.demux(video, *others):
        # (Flush packets at the end carry stream_index 0 whatever their stream; .stream is right.)
        if packet.stream.index != video.index:
            if packet.pts is not None and packet.time_base:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                stats.others_end = end if stats.others_end is None else max(stats.others_end, end)
            continue
        if packet.size or packet.pts is not None or packet.dts is not None:
            stats.packets += 1
            if not packet.size:
                stats.empty_packets += 1
            elif packet.is_discard:
                stats.discarded.append(packet.pts)
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
        for frame in frames:
            stats.timeline.add(frame.pts, frame.duration or 0)
            yield frame


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
    seeked: bool  # the pass seeked: frames before the seek were neither decoded nor counted
    silent: int  # packets meant to give no picture (see _read_pass)
    start_time: float  # stream time (s) of the first frame
    declared_start: float | None  # where the container says the video starts (s), if it says
    end_time: float | None  # stream time (s) where the decoded frames end, if the end was reached
    declared_end: float | None  # where the container says the video ends (s), if it says
    own_end: bool  # declared_end is the video stream's, not the whole file's
    stored_end: bool  # declared_end is stored in the file, not estimated by FFmpeg
    gif: tuple[int, bool] | None  # a GIF's (images, structure whole), when the end was reached
    cut_bytes: int | None  # bytes a Matroska file lacks of its declared size, at the end
    gap_seconds: float  # time uncovered between frames whose durations tile (see _Timeline)
    indexed: int | None  # entries of the container's index, when frames seem missing


def _read_pass(
    path: str, selection: _Selection, stream: int, strict: bool, allow_seek: bool
) -> tuple[_PassResult, VideoInfo]:
    """One decoding pass: open, decode the first frame, maybe seek, collect the wanted frames."""
    with _open_video(path, stream) as (container, video):
        declared_end, own_end, stored_end = _declared_end(container, video)
        others: tuple[av.stream.Stream, ...] = ()
        if not video.frames and not own_end:
            # Only the whole file's duration says where the video should end. Audio may outlast
            # the video in a good file, so note where the other streams end too: a cut stops all.
            others = tuple(
                s for s in container.streams if s is not video and s.type in ("audio", "video")
            )
        stats = _DecodeStats()
        frames = _decode(container, video, path, strict, stats, others)
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
            stats.timeline = _Timeline()  # the seek skips frames: no gap to count there
            try:
                container.seek(target, stream=video, backward=True)
            except av.FFmpegError as err:
                raise _SeekUnreliable(f"seek failed: {err}") from err
            frames = _decode(container, video, path, strict, stats, others)
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

        end_time = None
        if reached_end and timestamps:
            # The last frame lasts its own duration when the stream gives one (a VFR clip's last
            # frame may be long), else one average frame period; the later end never accuses a
            # good file.
            frame_seconds = 1.0 / source_fps if source_fps > 0 else 0.0
            end_time = max(timestamps) * seconds_per_tick + frame_seconds
            if stats.timeline.end is not None:
                end_time = max(end_time, stats.timeline.end * seconds_per_tick)
        formats = container.format.name.split(",")
        gif = _gif_images(path) if reached_end and "gif" in formats else None
        cut_bytes = _matroska_cut(path) if reached_end and "matroska" in formats else None
        timeline = stats.timeline
        gap_seconds = 0.0 if timeline.irregular else timeline.gaps * seconds_per_tick
        # Packets meant to give no picture: empty ones, and ones an edit list trims off the start
        # of a cut clip (flagged discard, before the first frame shown). Frames it hides at the
        # end are counted as lost: a cut clip has none (the cutter stops writing), and damage to
        # the timing tables looks just like that.
        silent = stats.empty_packets + sum(
            1 for pts in stats.discarded if pts is None or pts < origin
        )
        indexed = None
        if reached_end and not seeked and source_frames + silent < video.frames:
            # Only now: the index can be long, and this is rare (damage or AVI dropped frames).
            indexed = len(video.index_entries)

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
            seeked=seeked,
            silent=silent,
            start_time=origin * seconds_per_tick,
            declared_start=(
                float(video.start_time * time_base) if video.start_time is not None else None
            ),
            end_time=end_time,
            declared_end=declared_end,
            own_end=own_end,
            stored_end=stored_end,
            gif=gif,
            cut_bytes=cut_bytes,
            gap_seconds=gap_seconds,
            indexed=indexed,
        )
        return result, info


def _missing_frames(result: _PassResult, info: VideoInfo) -> tuple[int, str]:
    """How many frames a pass that reached the end of the stream did not get, and how that was
    judged ("" when nothing is missing or it cannot be judged).

    Witnesses, first found: a GIF's block structure (``_gif_images``); the declared frame count,
    less the packets meant to give no picture; the declared end (mkv / webm declare no count).
    After a seek the count covers only the frames decoded, so a pass that seeked is recounted from
    the start before anything is called lost (see ``read_video``).
    """
    if not result.reached_end:
        return 0, ""
    stats = result.stats
    declared, silent = info.declared_frames, result.silent
    if result.gif is not None:
        images, whole = result.gif
        if not whole:
            return max(1, images - result.source_frames), (
                f"the GIF's block structure breaks off after {images} images (cut short or "
                "overwritten), so frames after them are lost"
            )
        declared, silent = images, 0
    if declared is not None:
        if silent and (result.gap_seconds or not _reaches(result, info, result.declared_end)):
            # Packets hidden by design leave the shown frames filling the declared duration
            # without gaps; these do not, so the hiding is damage (to an mp4's timing tables).
            silent = 0
        lost = declared - silent - result.source_frames
        if lost <= _COUNT_SLACK_FRAMES or (result.gif is None and _never_stored(result, info)):
            return 0, ""
        excused = f" and {silent} are empty or trimmed by design" if silent else ""
        return lost, (
            f"the container declares {declared} frames, {result.source_frames} decode{excused}"
        )
    frame_seconds = 1.0 / info.fps if info.fps > 0 else 0.0
    if result.cut_bytes:
        # A cut file is damaged even where the times cannot show it (the B-frames displayed
        # before the last frame decoded are stored after it); count what they do show.
        shortfall = 0.0
        if result.declared_end is not None and result.end_time is not None:
            shortfall = result.declared_end - result.end_time + result.gap_seconds
        lost = max(1, round(shortfall / frame_seconds)) if frame_seconds else 1
        return lost, (
            f"the file ends {result.cut_bytes} bytes short of the size its Matroska header "
            "declares: it was cut short and its last frames are lost"
        )
    if result.end_time is None or result.declared_end is None:
        return 0, ""
    content_end = result.end_time
    if not result.own_end and stats.others_end is not None:
        content_end = max(content_end, stats.others_end)
    shortfall = result.declared_end - content_end
    declared_span = f"to {result.declared_end:.3f}s"
    if result.declared_start is not None and result.start_time > result.declared_start:
        # Frames missing at the start (a first frame damaged into one not shown) delay it.
        shortfall += result.start_time - result.declared_start
        declared_span = f"from {result.declared_start:.3f}s {declared_span}"
    gaps = ""
    if result.gap_seconds:
        # Frames missing in between (a block the demuxer skipped) leave the timeline uncovered.
        shortfall += result.gap_seconds
        gaps = f" with {result.gap_seconds:.3f}s uncovered between them"
    if result.stored_end and frame_seconds:
        slack = _END_SLACK_FRAMES * frame_seconds + _END_SLACK_SECONDS
    else:
        # A duration FFmpeg estimated (from the bit rate, for some formats) or no frame rate to
        # measure in: only a gross shortfall counts.
        slack = max(0.5, 0.05 * result.declared_end, 2 * frame_seconds)
    if shortfall <= slack:
        return 0, ""
    lost = max(1, round(shortfall * info.fps)) if info.fps > 0 else 1
    return lost, (
        f"the decoded frames run from {result.start_time:.3f}s to {content_end:.3f}s{gaps} but "
        f"the container says the video runs {declared_span} (about {lost} frames missing)"
    )


def _never_stored(result: _PassResult, info: VideoInfo) -> bool:
    """Whether the frames a container counts but did not give are ones it never stored: AVI
    capture software writes an empty chunk for each dropped frame and counts it, and FFmpeg leaves
    those out of its index. Then the stream decoded cleanly, every index entry gave a frame, and
    the frames still run to the end the declared count implies (the gaps are inside). A cut file
    fails the last test (FFmpeg rebuilds its index from what is left), a lost chunk the second."""
    stats = result.stats
    if stats.packet_errors or result.corrupt_frames or stats.gave_up:
        return False
    if result.indexed is None or result.source_frames + result.silent < result.indexed:
        return False
    if info.fps <= 0 or info.declared_frames is None:
        return False
    return _reaches(result, info, result.start_time + info.declared_frames / info.fps)


def _reaches(result: _PassResult, info: VideoInfo, end: float | None) -> bool:
    """Whether the decoded frames run to ``end`` (stream time, s) within half a frame; False when
    either end is unknown."""
    if end is None or result.end_time is None or info.fps <= 0:
        return False
    return result.end_time >= end - 0.5 / info.fps


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
            corrupt, or (when the read runs to the end) a frame missing. Missing means: fewer
            frames than the container declares (no slack: declared counts are exact); for a GIF,
            a block structure that breaks off; for mkv/webm, which declare no count, a file
            shorter than its header says, or frames that miss more than half a frame of the
            declared duration at the start, the end or in between. Frames declared but never
            meant to show (empty "dropped frame" chunks in AVI, frames an edit list trims off
            the start) are not damage: the shown frames still fill the declared span. Damage
            past the last wanted frame goes unseen: nothing is decoded there. False: returns
            the frames that decode and logs one warning saying how many were lost. Both raise
            when no frame decodes.

    Returns:
        (frames uint8 ``[T, H, W, 3]``, VideoInfo). ``info.decoded_frames`` is set when the call
        decoded the whole stream from the start.

    Raises:
        VideoDecodeError: missing file, not a video, no such stream, a codec FFmpeg cannot
            decode, damage (see ``strict``), fewer frames than asked for (the message says how
            many exist; nothing is padded), or any other failure of FFmpeg or PyAV on the file.
            The message is one line and names the file and the cause.
        ValueError: a selection argument out of range.
    """
    path = os.fspath(path)
    selection = _check_selection(start, num_frames, stride, fps)
    with _reading(path, "decoding"):
        return _read(path, selection, stream, strict)


def _read(
    path: str, selection: _Selection, stream: int, strict: bool
) -> tuple[np.ndarray, VideoInfo]:
    """read_video without the boundary that turns backend errors into VideoDecodeError."""
    try:
        result, info = _read_pass(path, selection, stream, strict, allow_seek=True)
        if result.seeked and _missing_frames(result, info)[0]:
            # Frames before the seek were not counted: count them all before accusing the file.
            raise _SeekUnreliable("frames may be missing after a seek")
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
